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
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import faust
from aiokafka import AIOKafkaProducer

from gravitas.agents.base import Agent
from gravitas.agents.services import NodeServices
from gravitas.schemas.settings import Settings
from gravitas.streams.broker.admin import create_topics
from gravitas.streams.metrics import NodeMetrics
from gravitas.streams.processing import Outbound, Processor, Record
from gravitas.streams.topology import Topology
from gravitas.streams.transports.kafka import bootstrap_servers

log = logging.getLogger("gravitas.runner.kafka")


def build_app(settings: Settings) -> faust.App:
    """A faust app whose id is the node's consumer group."""
    session = settings.kafka_session_timeout_s
    return faust.App(
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
    )


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
        """Publish one message and wait until the broker has it (progress events)."""
        await (await self.send(out))

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
            await agent.start(self.services)
            try:
                async for event in cast(faust.Stream[bytes], stream).noack().events():
                    msg = event.message
                    outs = await processor.process(
                        Record(logical, msg.partition, msg.offset, msg.key, event.value)
                    )
                    if not outs:
                        event.ack()
                        continue
                    delivered = [await self.send(out) for out in outs]
                    _ack_when_delivered(event, delivered)
            finally:
                await agent.stop()

        self.app.agent(topic, name=f"gravitas.{agent.name}")(consume)

    async def close(self) -> None:
        """Flush and stop the producer."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    def add_task(self, fn: Callable[[], Awaitable[Any]]) -> None:
        """Run a coroutine in the worker's loop once the app starts (the HTTP edge)."""
        self.app.task(fn)


def _ack_when_delivered(event: faust.EventT[bytes], delivered: list[asyncio.Future[Any]]) -> None:
    """Ack ``event`` when all its outputs are on the broker; on a failure, never ack it
    (the offset stays uncommitted and the record is processed again after a restart)."""
    pending = len(delivered)

    def done(fut: asyncio.Future[Any]) -> None:
        nonlocal pending
        if fut.cancelled() or fut.exception() is not None:
            log.error(
                "output of %s/%s not delivered: %r",
                event.message.topic,
                event.message.offset,
                None if fut.cancelled() else fut.exception(),
            )
            return
        pending -= 1
        if pending == 0:
            event.ack()

    for fut in delivered:
        fut.add_done_callback(done)


async def prepare_topics(settings: Settings, topology: Topology, timeout: float = 60) -> None:
    """Create every topic of the topology with its partition count (idempotent)."""
    await create_topics(bootstrap_servers(settings.broker), topology.partition_counts(), timeout)


def run_sync_prepare(settings: Settings, topology: Topology) -> None:
    """Blocking :func:`prepare_topics` for use before the worker owns the loop."""
    asyncio.run(prepare_topics(settings, topology))
