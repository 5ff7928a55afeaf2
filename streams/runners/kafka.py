"""The scale-out runner: every agent is a faust agent on its Kafka topic.

Source topics are created up front with the partition count the app expects (faust
does not create them, and a mismatch would crash the agent). Outputs go through the
runner's own pipelined aiokafka producer, and a record is acked only when every output
of it is on the broker; faust commits acked offsets only: at-least-once, with
idempotent effects and deterministic output ids making replays harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from gravitas.agents.base import Agent
from gravitas.agents.services import NodeServices
from gravitas.schemas.errors import TransportError
from gravitas.schemas.settings import Settings
from gravitas.streams.broker.admin import create_topics
from gravitas.streams.metrics import NodeMetrics
from gravitas.streams.processing import Outbound, Processor, Record
from gravitas.streams.runners.faust_consumer import use_fast_handoff
from gravitas.streams.topology import Topology
from gravitas.streams.transports.kafka import bootstrap_servers

log = logging.getLogger("gravitas.runner.kafka")


def build_app(settings: Settings) -> faust.App:
    """A faust app whose id is the node's consumer group."""
    session = settings.kafka_session_timeout_s
    app = faust.App(
        settings.consumer_group,
        broker=settings.broker,
        store="memory://",
        topic_partitions=settings.partitions,
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=False,
        autodiscover=False,
        datadir=str(settings.data_dir / "faust"),
        broker_session_timeout=session,
        broker_heartbeat_interval=max(0.5, session / 10),
        broker_commit_interval=1.0,
        broker_max_poll_records=settings.kafka_batch_size,
        consumer_auto_offset_reset="earliest",
        producer_linger=0.005,
        producer_acks=-1,
        stream_wait_empty=False,
        # faust pauses fetching a partition once its stream buffer is 80% full and the
        # fetch then waits out its 1 s timeout: with batched agents the default (4096)
        # stalled the worker about half the time (5k -> 13k events/s).
        stream_buffer_maxsize=max(32_768, 16 * settings.kafka_batch_size),
    )
    use_fast_handoff(app)
    return app


class KafkaRunner:
    """Registers every agent on a faust app; the app's worker runs them."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        topology: Topology,
        agents: Sequence[Agent],
        services: NodeServices,
        metrics: NodeMetrics,
    ) -> None:
        self.app = app
        self.settings = settings
        self.topology = topology
        self.agents = list(agents)
        self.services = services
        self.metrics = metrics
        self._producer: AIOKafkaProducer | None = None
        for agent in self.agents:
            self._register(agent)

    async def _get_producer(self) -> AIOKafkaProducer:
        """The runner's own producer (faust's per-send path costs ~0.5 ms a message)."""
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap_servers(self.settings.broker),
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                max_batch_size=1 << 20,
            )
            await producer.start()
            self._producer = producer
        return self._producer

    async def send(self, out: Outbound) -> asyncio.Future[Any]:
        """Queue a message; the returned future resolves once the broker has it."""
        producer = await self._get_producer()
        fut = await producer.send(
            self.topology.physical(out.topic), out.value, key=out.key.encode()
        )
        self.metrics.published.labels(out.topic).inc()
        return fut

    async def publish(self, out: Outbound) -> None:
        """Publish one message and wait until the broker has it (progress events); a
        failure is a :class:`TransportError` (the error policy retries it)."""
        try:
            await (await self.send(out))
        except KafkaError as exc:
            raise TransportError(
                f"could not publish {len(out.value)} bytes to {out.topic!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def _register(self, agent: Agent) -> None:
        topic = self.app.topic(
            self.topology.physical(agent.topic),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=self.topology.partitions(agent.topic),
        )
        processor = Processor(
            agent,
            self.topology,
            self.services,
            self.metrics,
            self.publish,
            node_id=self.settings.node_id,
            retry_attempts=self.settings.retry_attempts,
        )
        logical = agent.topic

        async def consume(stream: faust.StreamT[bytes]) -> None:
            # Events are acked by hand, only once every output of the event has reached
            # the broker: faust commits acked offsets only, so a crash replays the rest.
            # Events already buffered in the agent's channel are taken as one batch
            # (never waiting for more): one pass of processing and sending, one ack
            # callback for the batch.
            _quiet_library_debug(self.settings)
            await agent.start(self.services)
            await processor.recover()
            events_stream = cast(faust.Stream[bytes], stream).noack()
            queue = getattr(events_stream.channel, "queue", None)
            more_buffered = (lambda: False) if queue is None else (lambda: not queue.empty())
            limit = max(1, self.settings.kafka_batch_size)
            batch: list[faust.EventT[bytes]] = []
            try:
                async for event in events_stream.events():
                    batch.append(event)
                    if len(batch) < limit and more_buffered():
                        continue
                    events, batch = batch, []
                    await self._handle_batch(processor, logical, events)
            finally:
                await agent.stop()

        self.app.agent(topic, name=f"gravitas.{agent.name}")(consume)

    async def _handle_batch(
        self, processor: Processor, logical: str, events: list[faust.EventT[bytes]]
    ) -> None:
        """Process a batch of events, send all their outputs, ack the batch once all of
        them are on the broker."""
        records = [
            Record(logical, m.partition, m.offset, m.key, e.value)
            for e in events
            for m in (e.message,)
        ]
        outs = await processor.process_many(records)
        if not outs:
            for event in events:
                event.ack()
            return
        producer = await self._get_producer()
        delivered = [await self._send_or_deadletter(producer, processor, o) for o in outs]
        for topic, n in Counter(o.topic for o in outs).items():
            self.metrics.published.labels(topic).inc(n)
        _ack_when_delivered(events, delivered)

    async def _send_or_deadletter(
        self, producer: AIOKafkaProducer, processor: Processor, out: Outbound
    ) -> asyncio.Future[Any]:
        """Queue ``out``; one the producer refuses (too large, unknown topic) is replaced
        by a dead-letter record naming the reason: a handled error, never a crash."""
        physical = self.topology.physical
        try:
            return await producer.send(physical(out.topic), out.value, key=out.key.encode())
        except KafkaError as exc:
            log.error("output to %s of %d bytes refused: %r", out.topic, len(out.value), exc)
            *answers, dead = processor.undeliverable(out, exc)
            for answer in answers:
                await producer.send(physical(answer.topic), answer.value, key=answer.key.encode())
            return await producer.send(physical(dead.topic), dead.value, key=dead.key.encode())

    async def close(self) -> None:
        """Flush and stop the producer."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    def add_task(self, fn: Callable[[], Awaitable[Any]]) -> None:
        """Run a coroutine in the worker's loop once the app starts (the HTTP edge)."""
        self.app.task(fn)


def _ack_when_delivered(
    events: list[faust.EventT[bytes]], delivered: list[asyncio.Future[Any]]
) -> None:
    """Ack ``events`` when all their outputs are on the broker; on a failure, never ack
    them (the offsets stay uncommitted and the records are processed again after a
    restart)."""
    pending = len(delivered)
    failed = False

    def done(fut: asyncio.Future[Any]) -> None:
        nonlocal pending, failed
        if failed:
            return
        if fut.cancelled() or fut.exception() is not None:
            failed = True
            first = events[0].message
            log.error(
                "outputs of %s/%s@%s (+%d) not delivered: %r",
                first.topic,
                first.partition,
                first.offset,
                len(events) - 1,
                None if fut.cancelled() else fut.exception(),
            )
            return
        pending -= 1
        if pending == 0:
            for event in events:
                event.ack()

    for fut in delivered:
        fut.add_done_callback(done)


def _quiet_library_debug(settings: Settings) -> None:
    """faust's worker leaves the root logger at DEBUG (its handler filters), so every
    library ``log.debug`` builds a record (aiokafka logs one per message sent). Raise the
    root level to what is shown unless DEBUG was asked for."""
    if settings.log_level != "DEBUG":
        root = logging.getLogger()
        root.setLevel(max(root.level, logging.WARNING))


async def prepare_topics(settings: Settings, topology: Topology, timeout: float = 60) -> None:
    """Create every topic of the topology with its partition count (idempotent)."""
    await create_topics(bootstrap_servers(settings.broker), topology.partition_counts(), timeout)


def run_sync_prepare(settings: Settings, topology: Topology) -> None:
    """Blocking :func:`prepare_topics` for use before the worker owns the loop."""
    asyncio.run(prepare_topics(settings, topology))
