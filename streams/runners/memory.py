"""The embedded runner: every agent of a node on the in-process :class:`MemoryBus`.

One asyncio task per (agent, partition) keeps Kafka's single-writer-per-partition
semantics; offsets are committed after the outputs of a record are published.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from gravitas.agents.base import Agent
from gravitas.agents.services import NodeServices
from gravitas.streams.metrics import NodeMetrics
from gravitas.streams.processing import Outbound, Processor, Record
from gravitas.streams.topology import Topology
from gravitas.streams.transports.memory import MemoryBus

log = logging.getLogger("gravitas.runner.memory")


class MemoryRunner:
    """Runs agents over a :class:`MemoryBus` until :meth:`stop`."""

    def __init__(
        self,
        bus: MemoryBus,
        topology: Topology,
        agents: Sequence[Agent],
        services: NodeServices,
        metrics: NodeMetrics,
        *,
        node_id: str,
        group: str,
        retry_attempts: int = 3,
        batch: int = 500,
    ) -> None:
        self.bus = bus
        self.topology = topology
        self.agents = list(agents)
        self.services = services
        self.metrics = metrics
        self.node_id = node_id
        self.group = group
        self.retry_attempts = retry_attempts
        self.batch = batch
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        for name in topology.names:
            bus.create_topic(topology.physical(name), topology.partitions(name))

    async def publish(self, out: Outbound) -> None:
        """Append an outbound message to its topic."""
        self.bus.publish(self.topology.physical(out.topic), out.key.encode(), out.value)
        self.metrics.published.labels(out.topic).inc()

    async def start(self) -> None:
        """Start every agent's partition loops."""
        for agent in self.agents:
            await agent.start(self.services)
            processor = Processor(
                agent,
                self.topology,
                self.services,
                self.metrics,
                self.publish,
                node_id=self.node_id,
                retry_attempts=self.retry_attempts,
            )
            await processor.recover()
            for p in range(self.topology.partitions(agent.topic)):
                task = asyncio.create_task(self._loop(processor, p), name=f"{agent.name}[{p}]")
                self._tasks.append(task)

    async def _loop(self, processor: Processor, partition: int) -> None:
        topic = processor.agent.topic
        physical = self.topology.physical(topic)
        group = f"{self.group}.{processor.agent.name}"
        while not self._stopping.is_set():
            offset = self.bus.committed(group, physical, partition)
            records = self.bus.read(physical, partition, offset, self.batch)
            if not records:
                await self.bus.wait(physical, 0.5)
                continue
            for rec in records:
                if self._stopping.is_set():
                    return
                outs = await processor.process(
                    Record(topic, partition, rec.offset, rec.key, rec.value)
                )
                for out in outs:
                    await self.publish(out)
                self.bus.commit(group, physical, partition, rec.offset + 1)

    def lag(self) -> int:
        """Records not yet processed by any agent (0 when the node is idle)."""
        total = 0
        for agent in self.agents:
            physical = self.topology.physical(agent.topic)
            group = f"{self.group}.{agent.name}"
            for p in range(self.topology.partitions(agent.topic)):
                total += self.bus.end_offset(physical, p) - self.bus.committed(group, physical, p)
        return total

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every agent has processed everything published so far."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.lag() > 0:
            if loop.time() > deadline:
                raise TimeoutError(f"agents still have {self.lag()} records after {timeout}s")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop the loops after their current record; offsets stay committed."""
        self._stopping.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for agent in self.agents:
            await agent.stop()
