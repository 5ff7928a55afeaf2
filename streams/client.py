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
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from gravitas.schemas.base import Event
from gravitas.schemas.codec import decode, encode
from gravitas.schemas.common import TimeRange
from gravitas.schemas.errors import GravitasError, RequestError
from gravitas.schemas.events import (
    DatacubeReady,
    DatacubeRequested,
    FeatureResult,
    Progress,
    Rejected,
    SearchResult,
)
from gravitas.schemas.settings import load_settings
from gravitas.schemas.workflows import WorkflowStatus
from gravitas.streams.topology import Topology
from gravitas.streams.transports.base import Transport
from gravitas.streams.transports.edge import EdgeTransport, discover_edge, local_token
from gravitas.streams.transports.kafka import KafkaTransport

log = logging.getLogger("gravitas.client")

ANSWER_GRACE_S = 3.0
"""After a rejection, how long to wait for an answer published alongside it."""


class RequestRejectedError(RequestError):
    """The node dead-lettered a published event; the message carries its reason."""

    def __init__(self, rejected: Rejected) -> None:
        self.rejected = rejected
        who = f"agent {rejected.agent}" if rejected.agent else "the node"
        super().__init__(
            f"{who} on node {rejected.node_id} rejected event {rejected.source_event_id} "
            f"({rejected.source_topic}): {rejected.error_class}: {rejected.reason}"
        )


def open_transport(
    broker: str,
    topology: Topology,
    *,
    edge_url: str | None = None,
    data_dir: Path | None = None,
    token: str | None = None,
) -> Transport:
    """The transport for a broker URL (``memory://`` goes through a node's edge, with the
    token of ``GRAVITAS_API_TOKEN`` or the node's ``<data_dir>/api_token``)."""
    if broker.startswith("kafka://"):
        return KafkaTransport(broker, topology)
    if broker.startswith("memory://"):
        settings = load_settings(data_dir=data_dir)
        if edge_url is None:
            edge_url = discover_edge(settings.data_dir)
        return EdgeTransport(edge_url, token or local_token(settings))
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
        self.transport = transport or open_transport(
            settings.broker,
            self.topology,
            edge_url=edge_url,
            data_dir=settings.data_dir,
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
        """Publish a request and wait for the reply with the same ``request_id``; a
        rejection of the request (on ``deadletter``) raises :class:`RequestRejectedError`
        with its reason at once."""
        request_id = getattr(event, "request_id", None)
        if request_id is None:
            raise RequestError(f"{type(event).__name__} has no request_id to correlate a reply")
        reply_topic = reply_topic or str(getattr(event, "reply_topic", "") or "")
        if not reply_topic:
            raise RequestError(f"no reply_topic given for {type(event).__name__}")
        reply = await self.publish_and_wait(
            event,
            reply_topic,
            lambda reply: getattr(reply, "request_id", None) == request_id,
            timeout,
            what=f"reply to request {request_id!r}",
        )
        if isinstance(reply, SearchResult) and reply.result_ref is not None:
            reply = await asyncio.to_thread(self._fetch_referenced, reply)
        return reply

    async def publish_and_wait(
        self,
        event: Event,
        topic: str,
        match: Callable[[Event], bool],
        timeout: float,
        *,
        what: str = "an answer",
    ) -> Event:
        """Publish ``event``, then return the first event on ``topic`` that ``match``
        accepts. ``deadletter`` is watched too: a ``Rejected`` record whose source is
        ``event`` raises :class:`RequestRejectedError` (after at most
        :data:`ANSWER_GRACE_S` for an answer sent alongside it, which wins). Both subscriptions are
        positioned before publishing, so a fast answer is not missed."""
        types = self.topology.events(topic)
        source_id = str(event.event_id)
        async with (
            self.transport.subscription(topic) as sub,
            self.transport.subscription("deadletter") as dead,
        ):
            await self.publish(event)

            async def answer() -> Event:
                async for rec in sub:
                    try:
                        reply = decode(rec.value, types)
                    except GravitasError:
                        continue
                    if match(reply):
                        return reply
                raise RequestError(f"subscription to {topic!r} ended without {what}")

            async def rejection() -> Event:
                async for rec in dead:
                    try:
                        rejected = decode(rec.value, [Rejected])
                    except GravitasError:
                        continue
                    if isinstance(rejected, Rejected) and rejected.source_event_id == source_id:
                        raise RequestRejectedError(rejected)
                await asyncio.Event().wait()  # the subscription ended: keep waiting for answer
                raise AssertionError("unreachable")

            tasks = [asyncio.create_task(answer()), asyncio.create_task(rejection())]
            try:
                done, _ = await asyncio.wait(
                    tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    raise RequestError(f"no {what} on {topic!r} within {timeout}s")
                if tasks[0] not in done:  # rejected; an agent that answers failures as
                    # well as dead-lettering them publishes its answer alongside: prefer it
                    await asyncio.wait([tasks[0]], timeout=ANSWER_GRACE_S)
                if tasks[0].done():
                    return tasks[0].result()
                return tasks[1].result()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

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

    async def run_workflow(
        self,
        spec: dict[str, Any],
        params: dict[str, Any] | None = None,
        **options: Any,
    ) -> WorkflowStatus | str:
        """Run a workflow spec (see :func:`gravitas.streams.workflow_client.run_workflow`)."""
        from gravitas.streams.workflow_client import run_workflow

        return await run_workflow(self, spec, params, **options)  # type: ignore[arg-type]

    async def featurize(
        self,
        expression: str,
        layers: Mapping[str, str],
        bbox: tuple[float, float, float, float],
        time: TimeRange | tuple[datetime, datetime],
        reducers: Sequence[str] = ("mean",),
        *,
        timeout: float = 600.0,
        on_progress: Callable[[Progress], None] | None = None,
        **options: Any,
    ) -> FeatureResult:
        """Compute features next to the data (``over``, ``quantiles``, ``top_k``,
        ``level``, ``model`` as in :class:`Featurize`); ``on_progress`` sees each
        progress event of the request."""
        from gravitas.streams.featurize_sdk import build_request, featurize

        req = build_request(expression, layers, bbox, time, reducers, **options)
        me: Any = self  # the SDK module imports this class as gravitas.streams.client
        return await featurize(me, req, timeout, on_progress)

    async def close(self) -> None:
        """Close the transport."""
        await self.transport.close()
