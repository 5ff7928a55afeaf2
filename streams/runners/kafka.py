"""The scale-out runner: every agent is a faust agent on its Kafka topic.

Source topics are created up front with the partition count the app expects (faust
does not create them, and a mismatch would crash the agent). faust's consumer hands each
agent its fetched records a partition-list at a time (``runners/bulk.py``); the agent
processes up to ``kafka_batch_size`` of them, sends all outputs through the runner's own
aiokafka producer as per-partition batches, and acks the batch (in order) only when
every output of it is on the broker; faust commits acked offsets only: at-least-once,
with idempotent effects and deterministic output ids making replays harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from gravitas.agents.base import Agent
from gravitas.agents.services import NodeServices
from gravitas.schemas.errors import TransportError
from gravitas.schemas.settings import Settings
from gravitas.streams.broker.admin import create_topics
from gravitas.streams.failpoints import Failpoint
from gravitas.streams.metrics import NodeMetrics
from gravitas.streams.processing import Outbound, Processor, Record
from gravitas.streams.runners.bulk import BulkSink, Chunk
from gravitas.streams.runners.faust_consumer import bulk_sink, use_fast_handoff
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
    """Runs every agent as a task of a faust app, fed by its consumer; the app's worker
    runs them."""

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
        physical = self.topology.physical(agent.topic)
        topic = self.app.topic(
            physical,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=self.topology.partitions(agent.topic),
        )
        self.app.topics.add(topic)  # faust subscribes the group to it
        batch = max(1, self.settings.kafka_batch_size)
        sink = bulk_sink(self.app, physical, high_water=max(32_768, 16 * batch))
        processor = Processor(
            agent,
            self.topology,
            self.services,
            self.metrics,
            self.publish,
            node_id=self.settings.node_id,
            retry_attempts=self.settings.retry_attempts,
            failpoint=Failpoint.parse(self.settings.failpoint),
        )

        async def consume() -> None:
            await self._run_agent(agent, processor, sink)

        consume.__name__ = consume.__qualname__ = f"gravitas.{agent.name}"
        self.app.task(consume)

    async def _run_agent(self, agent: Agent, processor: Processor, sink: BulkSink) -> None:
        """Take batches of the agent's records from the consumer, process them, send all
        their outputs; a second task acks each batch, in order, once every output of it
        is on the broker (faust commits acked offsets only, so a crash replays the rest)."""
        _quiet_library_debug(self.settings)
        await agent.start(self.services)
        await processor.recover()
        limit = max(1, self.settings.kafka_batch_size)
        logical = agent.topic
        pending: asyncio.Queue[_InFlight] = asyncio.Queue(maxsize=_IN_FLIGHT_BATCHES)
        acker = asyncio.create_task(self._ack_in_order(pending, sink, processor))
        try:
            while True:
                epoch, chunks = await sink.take(limit)
                records = [
                    Record(logical, r.partition, r.offset, r.key, r.value)
                    for _, recs in chunks
                    for r in recs
                ]
                outs = await processor.process_many(records)
                delivered = await self._send_outputs(processor, outs)
                await pending.put(_InFlight(epoch, chunks, outs, delivered))
                if acker.done():
                    acker.result()  # raise what ended it
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug, not an input: stop the worker, loudly
            log.exception("agent %s stopped: %r", agent.name, exc)
            await self.app.crash(exc)
            raise
        finally:
            acker.cancel()
            await agent.stop()

    async def _ack_in_order(
        self, pending: asyncio.Queue[_InFlight], sink: BulkSink, processor: Processor
    ) -> None:
        """Ack batches in the order they were taken once their outputs are delivered; a
        batch whose delivery failed is sent again (same bytes, same ids) until it is on the
        broker or a rebalance voids it: nothing after it is acked before it."""
        while True:
            item = await pending.get()
            futures, attempt = item.delivered, 0
            while True:
                results = await asyncio.gather(*futures, return_exceptions=True)
                failed = next((r for r in results if isinstance(r, BaseException)), None)
                if failed is None or item.epoch != sink.epoch:
                    break
                attempt += 1
                log.error(
                    "outputs of %d records not delivered (attempt %d): %r; sending again",
                    sum(len(c[1]) for c in item.chunks),
                    attempt,
                    failed,
                )
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
                futures = await self._send_outputs(processor, item.outs)
            sink.ack(item.epoch, item.chunks)

    async def _send_outputs(
        self, processor: Processor, outs: Sequence[Outbound]
    ) -> list[asyncio.Future[Any]]:
        """Queue every output: small ones appended to one producer batch per partition
        (the producer's own partitioner, so keys land where ``send`` would put them),
        large ones one by one with the dead-letter fallback. Returns the delivery
        futures."""
        if not outs:
            return []
        producer = await self._get_producer()
        futures: list[asyncio.Future[Any]] = []
        by_topic: dict[str, list[Outbound]] = {}
        for out in outs:
            if len(out.value) > _BULK_MAX_BYTES:
                futures.append(await self._send_or_deadletter(producer, processor, out))
            else:
                by_topic.setdefault(out.topic, []).append(out)
        for logical, group in by_topic.items():
            try:
                futures.extend(await _send_bulk(producer, self.topology.physical(logical), group))
            except KafkaError as exc:  # broker away, queue full past its timeout: sent again
                failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                failed.set_exception(exc)
                futures.append(failed)
                continue
            self.metrics.published.labels(logical).inc(len(group))
        return futures

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
        """Run a coroutine in the worker's loop once the app starts (the HTTP edge).

        Wrapped: faust passes the app to a task function that takes any parameter, which
        would land in an optional one (``run_forever(backoff_s=...)``)."""

        async def run() -> None:
            await fn()

        self.app.task(run)


class _InFlight(NamedTuple):
    """A processed batch whose outputs are on their way to the broker."""

    epoch: int
    chunks: list[Chunk]
    outs: list[Outbound]
    delivered: list[asyncio.Future[Any]]


_IN_FLIGHT_BATCHES = 4
"""Batches processed ahead of their delivery (back-pressure on the producer)."""

_BULK_MAX_BYTES = 256 * 1024
"""Outputs larger than this take the one-by-one send with the dead-letter fallback."""


async def _send_bulk(
    producer: AIOKafkaProducer, topic: str, outs: Sequence[Outbound]
) -> list[asyncio.Future[Any]]:
    """Append ``outs`` to per-partition producer batches and queue them."""
    all_partitions = sorted(await producer.partitions_for(topic))
    available = list(producer._metadata.available_partitions_for_topic(topic))
    partitioner = producer._partitioner
    builders: dict[int, Any] = {}
    futures: list[asyncio.Future[Any]] = []
    for out in outs:
        key = out.key.encode()
        partition = partitioner(key, all_partitions, available)
        builder = builders.get(partition)
        if builder is None:
            builder = builders[partition] = producer.create_batch()
        if builder.append(timestamp=None, key=key, value=out.value) is None:
            futures.append(await producer.send_batch(builder, topic, partition=partition))
            builder = builders[partition] = producer.create_batch()
            builder.append(timestamp=None, key=key, value=out.value)
    for partition, builder in builders.items():
        futures.append(await producer.send_batch(builder, topic, partition=partition))
    return futures


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
