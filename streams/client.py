"""The gravitas SDK: publish events, subscribe to topics, and make requests.

    >>> async with Client("kafka://127.0.0.1:9092") as client:        # doctest: +SKIP
    ...     await client.publish(SceneAnnounced(scene_id="s1", collection="c", hrefs=[...]))
    ...     ready = await client.request(datacube_request, timeout=600)

``memory://`` reaches a running embedded node through its HTTP edge (found in the
node's data directory, or given as ``edge_url``); inside the node's own process pass
its ``transport``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType

from gravitas.schemas.base import Event
from gravitas.schemas.codec import decode, encode
from gravitas.schemas.errors import GravitasError, RequestError
from gravitas.schemas.events import DatacubeReady, DatacubeRequested, SearchResult
from gravitas.schemas.settings import load_settings
from gravitas.streams.topology import Topology
from gravitas.streams.transports.base import Transport
from gravitas.streams.transports.edge import EdgeTransport, discover_edge
from gravitas.streams.transports.kafka import KafkaTransport

log = logging.getLogger("gravitas.client")


def open_transport(
    broker: str,
    topology: Topology,
    *,
    edge_url: str | None = None,
    data_dir: Path | None = None,
    token: str | None = None,
) -> Transport:
    """The transport for a broker URL (``memory://`` goes through a node's edge)."""
    if broker.startswith("kafka://"):
        return KafkaTransport(broker, topology)
    if broker.startswith("memory://"):
        if edge_url is None:
            edge_url = discover_edge(data_dir or load_settings().data_dir)
        return EdgeTransport(edge_url, token)
    raise GravitasError(f"broker must be memory:// or kafka://host:port, got {broker!r}")


class Client:
    """Typed access to a gravitas deployment."""

    def __init__(
        self,
        broker: str | None = None,
        *,
        edge_url: str | None = None,
        data_dir: Path | None = None,
        topology: Topology | None = None,
        transport: Transport | None = None,
        node_id: str | None = None,
    ) -> None:
        settings = load_settings(broker=broker, data_dir=data_dir, node_id=node_id)
        self.settings = settings
        self.topology = topology or Topology.for_settings(settings)
        self.node_id = settings.node_id
        token = settings.api_token.get_secret_value() if settings.api_token else None
        self.transport = transport or open_transport(
            settings.broker,
            self.topology,
            edge_url=edge_url,
            data_dir=settings.data_dir,
            token=token,
        )

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def publish(self, event: Event, topic: str | None = None) -> None:
        """Publish an event on its topic (inferred from its class when unambiguous)."""
        topic = topic or self.topology.topic_for(event)
        if type(event) not in self.topology.events(topic):
            raise GravitasError(f"topic {topic!r} does not carry {type(event).__name__}")
        await self.transport.publish(topic, event.key().encode(), encode(event))

    async def subscribe(self, topic: str, from_beginning: bool = False) -> AsyncIterator[Event]:
        """Typed events of a topic as they arrive; undecodable records are skipped (logged)."""
        types = self.topology.events(topic)
        async with self.transport.subscription(topic, from_beginning) as sub:
            async for rec in sub:
                try:
                    yield decode(rec.value, types)
                except GravitasError as exc:
                    log.warning("skipping record %s/%s: %s", rec.partition, rec.offset, exc)

    async def request(
        self, event: Event, reply_topic: str | None = None, timeout: float = 60.0
    ) -> Event:
        """Publish a request and wait for the reply with the same ``request_id``.

        The subscription is positioned before publishing, so a fast reply is not missed.
        """
        request_id = getattr(event, "request_id", None)
        if request_id is None:
            raise RequestError(f"{type(event).__name__} has no request_id to correlate a reply")
        reply_topic = reply_topic or str(getattr(event, "reply_topic", "") or "")
        if not reply_topic:
            raise RequestError(f"no reply_topic given for {type(event).__name__}")
        types = self.topology.events(reply_topic)
        async with self.transport.subscription(reply_topic) as sub:
            await self.publish(event)

            async def wait() -> Event:
                async for rec in sub:
                    try:
                        reply = decode(rec.value, types)
                    except GravitasError:
                        continue
                    if getattr(reply, "request_id", None) == request_id:
                        return reply
                raise RequestError(f"subscription to {reply_topic!r} ended without a reply")

            try:
                reply = await asyncio.wait_for(wait(), timeout)
            except TimeoutError:
                raise RequestError(
                    f"no reply to request {request_id!r} on {reply_topic!r} within {timeout}s"
                ) from None
        if isinstance(reply, SearchResult) and reply.result_ref is not None:
            reply = await asyncio.to_thread(self._fetch_referenced, reply)
        return reply

    def _fetch_referenced(self, result: SearchResult) -> SearchResult:
        """The whole result a large answer references in the node's object store."""
        from gravitas.agents.results import fetch_referenced
        from gravitas.storage.objects import open_object_store

        s = self.settings
        secret = [k.get_secret_value() if k else None for k in (s.s3_access_key, s.s3_secret_key)]
        url = s.object_store or (s.data_dir / "objects").resolve()
        return fetch_referenced(open_object_store(url, secret[0], secret[1]), result)

    async def request_datacube(
        self, request: DatacubeRequested, timeout: float = 1800.0
    ) -> DatacubeReady:
        """Request a datacube and wait for its :class:`DatacubeReady` event."""
        reply = await self.request(request, request.reply_topic, timeout)
        assert isinstance(reply, DatacubeReady)
        return reply

    async def close(self) -> None:
        """Close the transport."""
        await self.transport.close()
