"""Whole fetched batches from faust's consumer to an agent, and acks back in bulk.

faust hands every fetched record to its conductor and stream iterator one at a time
(a ``Message``, the serializer registry, an ``Event``, a queue put, an event-loop turn):
about 45 µs of the ~70 µs a pass-through event cost one worker. For the agents' topics
the runner's consumer (:mod:`gravitas.streams.runners.faust_consumer`) instead appends
each partition's fetched records, as one list, to a :class:`BulkSink`, and the agent
takes up to ``kafka_batch_size`` records at a time. Everything else stays faust's: the
fetch thread, group membership and assignment, read offsets and gaps, the acked-offset
bookkeeping and the periodic commit. Acks go back through :meth:`BulkSink.ack`, which
adds the offsets exactly where ``Consumer.ack`` would.

A rebalance that revokes a partition drops its buffered records and makes acks of
records handed out before it void (their offsets are read again by the partition's
next owner): at-least-once, duplicates carry the same ids and effects are idempotent.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from faust.types import TP

Chunk = tuple[TP, Sequence[Any]]
"""One partition's records (aiokafka ``ConsumerRecord``), in offset order."""


class BulkSink:
    """The records fetched for one agent's topic, waiting for the agent."""

    def __init__(self, topic: str, high_water: int) -> None:
        self.topic = topic
        self.high_water = max(1, high_water)
        self._chunks: deque[Chunk] = deque()
        self._buffered = 0
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self.epoch = 0
        """Bumped by every revocation; acks of records taken in an older epoch are void."""
        self.consumer: Any = None
        """faust's consumer, set when it first hands records over."""

    @property
    def buffered(self) -> int:
        """Records waiting for the agent."""
        return self._buffered

    def put(self, tp: TP, records: Sequence[Any]) -> None:
        """Append one partition's fetched records (never blocks)."""
        if not records:
            return
        self._chunks.append((tp, records))
        self._buffered += len(records)
        self._ready.set()
        if self._buffered >= self.high_water:
            self._room.clear()

    async def wait_for_room(self) -> None:
        """Wait while the buffer is at its high-water mark (fetch back-pressure)."""
        await self._room.wait()

    async def take(self, limit: int) -> tuple[int, list[Chunk]]:
        """Wait for records; return (epoch, up to about ``limit`` records as chunks). A
        partition's list is split so no more than ``limit`` records are taken."""
        while not self._chunks:
            self._ready.clear()
            await self._ready.wait()
        taken: list[Chunk] = []
        n = 0
        while self._chunks and n < limit:
            tp, records = self._chunks[0]
            room = limit - n
            if len(records) <= room:
                self._chunks.popleft()
                taken.append((tp, records))
                n += len(records)
            else:
                taken.append((tp, records[:room]))
                self._chunks[0] = (tp, records[room:])
                n += room
        self._buffered -= n
        if self._buffered < self.high_water // 2 or not self._chunks:
            self._room.set()
        return self.epoch, taken

    def revoke(self, revoked: Iterable[TP]) -> None:
        """Drop the buffered records of revoked partitions; void in-flight acks."""
        gone = set(revoked)
        self.epoch += 1
        if not gone:
            return
        kept = deque(c for c in self._chunks if c[0] not in gone)
        self._chunks = kept
        self._buffered = sum(len(c[1]) for c in kept)
        if self._buffered < self.high_water:
            self._room.set()

    def ack(self, epoch: int, chunks: Sequence[Chunk]) -> int:
        """Mark these records processed (their outputs are on the broker); returns how
        many offsets faust will commit. Void if a rebalance happened since ``take``."""
        consumer = self.consumer
        if epoch != self.epoch or consumer is None:
            return 0
        return int(consumer.ack_records(chunks))
