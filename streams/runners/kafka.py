"""The scale-out runner: every agent is a faust agent on its Kafka topic.

Source topics are created up front with the partition count the app expects (faust
does not create them, and a mismatch would crash the agent). Records are consumed in
batches; each record's outputs are handed to the producer before the record is acked,
and faust flushes the producer before it commits offsets: at-least-once, with
idempotent effects and deterministic output ids making replays harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import faust

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
        for agent in self.agents:
            self._register(agent)

    async def publish(self, out: Outbound) -> None:
        """Hand a message to faust's producer (flushed before every offset commit)."""
        await self.app.producer.send(
            self.topology.physical(out.topic), out.key.encode(), out.value, None, None, None
        )
        self.metrics.published.labels(out.topic).inc()

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
        batch = self.settings.kafka_batch_size
        logical = agent.topic

        async def consume(stream: faust.StreamT[bytes]) -> None:
            await agent.start(self.services)
            try:
                async for events in cast(faust.Stream[bytes], stream).take_events(
                    batch, within=0.01
                ):
                    for event in events:
                        msg = event.message
                        outs = await processor.process(
                            Record(logical, msg.partition, msg.offset, msg.key, event.value)
                        )
                        for out in outs:
                            await self.publish(out)
            finally:
                await agent.stop()

        self.app.agent(topic, name=f"gravitas.{agent.name}")(consume)

    def add_task(self, fn: Callable[[], Awaitable[Any]]) -> None:
        """Run a coroutine in the worker's loop once the app starts (the HTTP edge)."""
        self.app.task(fn)


async def prepare_topics(settings: Settings, topology: Topology, timeout: float = 60) -> None:
    """Create every topic of the topology with its partition count (idempotent)."""
    await create_topics(bootstrap_servers(settings.broker), topology.partition_counts(), timeout)


def run_sync_prepare(settings: Settings, topology: Topology) -> None:
    """Blocking :func:`prepare_topics` for use before the worker owns the loop."""
    asyncio.run(prepare_topics(settings, topology))
