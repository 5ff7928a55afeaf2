"""The bulk hand-off between faust's consumer and an agent (no broker needed): records
are taken in order and never twice, revoked partitions are dropped, acks of records
taken before a rebalance are void, and the fast id function equals uuid5."""

from __future__ import annotations

import asyncio
import random
import uuid

from aiokafka.structs import ConsumerRecord, TopicPartition

from gravitas.schemas.base import derive_event_id
from gravitas.streams.processing import derived_id_str
from gravitas.streams.runners.bulk import BulkSink


def records(tp: TopicPartition, start: int, n: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(tp.topic, tp.partition, o, 0, 0, b"k", b"v", None, 1, 1, ())
        for o in range(start, start + n)
    ]


class AckLog:
    """Stands where faust's consumer stands: records the offsets acked per partition."""

    def __init__(self) -> None:
        self.acked: dict[TopicPartition, list[int]] = {}

    def ack_records(
        self, chunks: list[tuple[TopicPartition, list[ConsumerRecord[bytes, bytes]]]]
    ) -> int:
        n = 0
        for tp, recs in chunks:
            self.acked.setdefault(tp, []).extend(r.offset for r in recs)
            n += len(recs)
        return n


async def test_take_splits_to_the_limit_in_order_and_never_twice() -> None:
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)
    sink = BulkSink("t", high_water=10_000)
    sink.put(a, records(a, 0, 7))
    sink.put(b, records(b, 100, 5))
    sink.put(a, records(a, 7, 3))
    seen: list[tuple[int, int]] = []
    while sink.buffered:
        _, chunks = await sink.take(4)
        assert sum(len(r) for _, r in chunks) <= 4
        seen += [(tp.partition, r.offset) for tp, recs in chunks for r in recs]
    assert [o for p, o in seen if p == 0] == list(range(10))
    assert [o for p, o in seen if p == 1] == list(range(100, 105))
    assert len(seen) == len(set(seen)) == 15


async def test_take_waits_for_records() -> None:
    tp = TopicPartition("t", 0)
    sink = BulkSink("t", high_water=100)
    waiter = asyncio.create_task(sink.take(10))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    sink.put(tp, records(tp, 5, 2))
    _, chunks = await asyncio.wait_for(waiter, 1)
    assert [r.offset for r in chunks[0][1]] == [5, 6]


async def test_revoke_drops_buffered_records_and_voids_earlier_acks() -> None:
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)
    sink = BulkSink("t", high_water=8)
    log = AckLog()
    sink.consumer = log
    sink.put(a, records(a, 0, 4))
    epoch, taken = await sink.take(4)  # in flight when the rebalance comes
    sink.put(a, records(a, 4, 4))
    sink.put(b, records(b, 0, 4))
    assert sink.buffered == 8
    room = asyncio.create_task(sink.wait_for_room())
    await asyncio.sleep(0.01)
    assert not room.done()  # at the high-water mark: the fetch loop waits
    sink.revoke([a])
    await asyncio.wait_for(room, 1)
    assert sink.buffered == 4
    assert sink.ack(epoch, taken) == 0 and log.acked == {}  # void: partition re-read
    new_epoch, chunks = await sink.take(10)
    assert [tp for tp, _ in chunks] == [b]
    assert sink.ack(new_epoch, chunks) == 4
    assert log.acked == {b: [0, 1, 2, 3]}


def test_fast_derived_id_equals_uuid5() -> None:
    rng = random.Random(16)
    salts = ["", "ping:0", "datacube:failed:3", "ünïcødé:π", "x" * 300]
    for i in range(500):
        parent = uuid.UUID(int=rng.getrandbits(128))
        salt = salts[i % len(salts)] + str(i)
        assert derived_id_str(parent, salt) == str(derive_event_id(parent, salt))
