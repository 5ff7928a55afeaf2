"""The embedded, in-process event log: partitions, offsets and consumer groups in memory.

It follows Kafka's model closely enough that the same agents and tests run on both:
records are keyed into partitions, each partition is an append-only list with offsets,
and a consumer group commits one offset per partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StoredRecord:
    """One record in a partition."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


@dataclass
class _Topic:
    partitions: list[list[StoredRecord]]
    changed: asyncio.Event = field(default_factory=asyncio.Event)


def partition_for(key: bytes | None, partitions: int, counter: int) -> int:
    """Keyed records go to ``crc32(key) % n``; unkeyed ones round-robin."""
    if key is None:
        return counter % partitions
    return zlib.crc32(key) % partitions


class MemoryBus:
    """Topics of partitioned logs with committed offsets per consumer group."""

    def __init__(self) -> None:
        self._topics: dict[str, _Topic] = {}
        self._committed: dict[tuple[str, str, int], int] = {}
        self._counter = 0

    def create_topic(self, name: str, partitions: int) -> None:
        """Create a topic (no-op if it exists with the same partition count)."""
        existing = self._topics.get(name)
        if existing is not None:
            if len(existing.partitions) != partitions:
                raise ValueError(
                    f"topic {name!r} has {len(existing.partitions)} partitions, not {partitions}"
                )
            return
        self._topics[name] = _Topic([[] for _ in range(partitions)])

    def _topic(self, name: str) -> _Topic:
        if name not in self._topics:
            self.create_topic(name, 1)
        return self._topics[name]

    def partitions(self, name: str) -> int:
        """Partition count of a topic."""
        return len(self._topic(name).partitions)

    def publish(self, topic: str, key: bytes | None, value: bytes) -> StoredRecord:
        """Append a record and wake every reader of the topic."""
        t = self._topic(topic)
        self._counter += 1
        p = partition_for(key, len(t.partitions), self._counter)
        log = t.partitions[p]
        rec = StoredRecord(p, len(log), key, value, int(time.time() * 1000))
        log.append(rec)
        t.changed.set()
        return rec

    def read(self, topic: str, partition: int, offset: int, max_records: int) -> list[StoredRecord]:
        """Records of a partition from ``offset`` (at most ``max_records``)."""
        return self._topic(topic).partitions[partition][offset : offset + max_records]

    def end_offset(self, topic: str, partition: int) -> int:
        """The offset the next record of a partition will get."""
        return len(self._topic(topic).partitions[partition])

    async def wait(self, topic: str, timeout: float | None = None) -> None:
        """Wait until something is appended to the topic (or the timeout passes)."""
        t = self._topic(topic)
        t.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(t.changed.wait(), timeout)

    def committed(self, group: str, topic: str, partition: int) -> int:
        """The committed offset of a group (0 if none)."""
        return self._committed.get((group, topic, partition), 0)

    def commit(self, group: str, topic: str, partition: int, offset: int) -> None:
        """Commit the next offset to read."""
        self._committed[(group, topic, partition)] = offset

    async def subscribe(
        self, topic: str, from_beginning: bool = False, poll_s: float = 0.5
    ) -> AsyncIterator[StoredRecord]:
        """Every record of every partition from now (or the beginning), as it arrives."""
        n = self.partitions(topic)
        positions = [0 if from_beginning else self.end_offset(topic, p) for p in range(n)]
        while True:
            got = False
            for p in range(n):
                for rec in self.read(topic, p, positions[p], 1000):
                    positions[p] = rec.offset + 1
                    got = True
                    yield rec
            if not got:
                await self.wait(topic, poll_s)
