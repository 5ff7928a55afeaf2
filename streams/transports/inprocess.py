"""Transport over an in-process :class:`MemoryBus` (tests, the embedded node itself)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gravitas.streams.topology import Topology
from gravitas.streams.transports.base import RawRecord, Subscription
from gravitas.streams.transports.memory import MemoryBus


class _BusSubscription:
    def __init__(self, bus: MemoryBus, topology: Topology, topic: str, start: list[int]) -> None:
        self._bus = bus
        self._topic = topic
        self._physical = topology.physical(topic)
        self._positions = start

    async def __aiter__(self) -> AsyncIterator[RawRecord]:
        while True:
            got = False
            for p, pos in enumerate(self._positions):
                for rec in self._bus.read(self._physical, p, pos, 1000):
                    self._positions[p] = rec.offset + 1
                    got = True
                    yield RawRecord(
                        self._topic, p, rec.offset, rec.key, rec.value, rec.timestamp_ms
                    )
            if not got:
                await self._bus.wait(self._physical, 0.5)


class InProcessTransport:
    """Publish to and read from a bus living in this process."""

    def __init__(self, bus: MemoryBus, topology: Topology) -> None:
        self.bus = bus
        self.topology = topology

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.bus.publish(self.topology.physical(topic), key, value)

    @asynccontextmanager
    async def subscription(
        self, topic: str, from_beginning: bool = False
    ) -> AsyncIterator[Subscription]:
        physical = self.topology.physical(topic)
        n = self.bus.partitions(physical)
        start = [0 if from_beginning else self.bus.end_offset(physical, p) for p in range(n)]
        yield _BusSubscription(self.bus, self.topology, topic, start)

    async def close(self) -> None:
        return None
