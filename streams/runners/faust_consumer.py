"""faust's aiokafka consumer with a cheaper per-message hand-off to the streams.

faust's fetch loop hands every message to the conductor with
``wait_first(callback(message), suspend_flow.wait())``: four tasks and an
``asyncio.wait`` a message, which capped one worker near 5k events/s. This consumer
overrides only ``wait_first``, and only for that hand-off: the conductor's coroutine is
first stepped synchronously; it almost always finishes without blocking (the message is
put on its stream's queue), and then no task is created. When it does block (flow
control during a rebalance, a full stream buffer), the rest of it is raced against the
other waits exactly as faust does.

For topics with a :class:`~gravitas.streams.runners.bulk.BulkSink` (every agent's topic
on a gravitas node) the fetch loop skips the conductor altogether: each partition's
fetched records go to the sink as one list, with faust's own read-offset and gap
bookkeeping, and come back as bulk acks into faust's acked-offset lists. Group
membership, assignment, the fetcher, commits and rebalances are faust's own, unchanged.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine, Generator, Sequence
from typing import Any, cast

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, AppT
from mode import Service
from mode.services import WaitArgT, WaitResults
from mode.utils.futures import notify
from mode.utils.times import Seconds

from gravitas.streams.runners.bulk import BulkSink, Chunk


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], first: Any) -> Generator[Any, Any, Any]:
    """Go on driving ``coro``, which has already yielded ``first`` to its driver (the
    same delegation ``await`` does, started one step late)."""
    value = first
    while True:
        try:
            sent = yield value
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                value = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                value = coro.send(sent)
            except StopIteration as stop:
                return stop.value


async def _finish(coro: Coroutine[Any, Any, Any], first: Any) -> Any:
    return await _resume(coro, first)


class FastHandoffConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer; only the message hand-off's ``wait_first`` differs."""

    def _is_handoff(self, coro: object) -> bool:
        """True for the conductor coroutine the fetch loop passes first."""
        callback = getattr(self, "callback", None)
        func = getattr(callback, "__func__", callback)
        code = getattr(func, "__code__", None)
        return code is not None and getattr(coro, "cr_code", None) is code

    async def wait_first(self, *coros: WaitArgT, timeout: Seconds = None) -> WaitResults:  # type: ignore[assignment]
        if not coros or not self._is_handoff(coros[0]) or self.suspend_flow.is_set():
            return await super().wait_first(*coros, timeout=timeout)
        handoff: Coroutine[Any, Any, Any] = coros[0]  # type: ignore[assignment]
        try:
            first = handoff.send(None)
        except StopIteration as stop:  # done without blocking: no tasks needed
            for other in coros[1:]:
                if isinstance(other, Coroutine):
                    other.close()  # the suspend_flow.wait() it never had to race
            return WaitResults([handoff], [stop.value], False)
        return await super().wait_first(_finish(handoff, first), *coros[1:], timeout=timeout)

    # -- bulk hand-off -------------------------------------------------------------

    @property
    def _sinks(self) -> dict[str, BulkSink]:
        return cast(FastHandoffTransport, self.transport).bulk_sinks

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for sink in self._sinks.values():
            sink.revoke(tp for tp in revoked if tp.topic == sink.topic)
        await super().on_partitions_revoked(revoked)

    def ack_records(self, chunks: Sequence[Chunk]) -> int:
        """Add the offsets of processed records to faust's acked lists (what
        ``Consumer.ack`` does per message); partitions no longer assigned are skipped."""
        assignment = self.assignment()
        n = 0
        for tp, records in chunks:
            if tp not in assignment:
                continue
            committed = self._committed_offset[tp]
            index = self._acked_index[tp]
            offsets = [
                r.offset
                for r in records
                if (committed is None or r.offset >= committed) and r.offset not in index
            ]
            if offsets:
                index.update(offsets)
                self._acked[tp].extend(offsets)
                n += len(offsets)
        self._n_acked += n
        notify(self._waiting_for_ack)
        return n

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - loop
        """faust's fetch loop; partitions of sink topics are handed over a list at a time."""
        sinks = self._sinks
        if not sinks:
            return await super()._drain_messages(fetcher)
        for sink in sinks.values():
            sink.consumer = self
        callback = self.callback
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        read_offset = self._read_offset
        commit_every = self._commit_every
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                for sink in sinks.values():
                    if sink.buffered >= sink.high_water:
                        await self.wait_first(sink.wait_for_room(), timeout=1.0)
                records, active = await self._wait_next_records(1.0)
                await self.sleep(0)
                if records is None or self.should_stop:
                    continue
                if not self.flow_active:
                    await self.perform_seek()
                    continue
                generation = self.app.consumer_generation_id
                for tp, recs in records.items():
                    if not self.flow_active or self.app.consumer_generation_id != generation:
                        break
                    if not (active is None or tp in active or tp in self._buffered_partitions):
                        continue
                    if not recs:
                        continue
                    self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    r_offset = read_offset[tp]
                    if r_offset is not None and recs[0].offset < r_offset:
                        recs = [r for r in recs if r.offset >= r_offset]
                        if not recs:
                            continue
                    prev = r_offset
                    for rec in recs:
                        if prev and rec.offset - prev > 1:
                            await self._add_gap(tp, prev + 1, rec.offset)
                        prev = rec.offset
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    target = sinks.get(tp.topic)
                    if target is not None:
                        target.put(tp, recs)
                    else:  # not an agent topic: faust's per-message path
                        for rec in recs:
                            await self.wait_first(
                                callback(self._to_message(tp, rec)), self.suspend_flow.wait()
                            )
                    read_offset[tp] = recs[-1].offset
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise


class FastHandoffTransport(faust_aiokafka.Transport):
    """faust's aiokafka transport with :class:`FastHandoffConsumer`."""

    Consumer = FastHandoffConsumer
    bulk_sinks: dict[str, BulkSink]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bulk_sinks = {}


def use_fast_handoff(app: AppT) -> FastHandoffTransport:
    """Give ``app`` the fast hand-off consumer (before its consumer is created)."""
    transport = FastHandoffTransport(app.conf.broker_consumer, app)
    app.transport = transport
    return transport


def bulk_sink(app: AppT, topic: str, high_water: int) -> BulkSink:
    """The sink the consumer fills with ``topic``'s records (one per topic)."""
    transport = app.transport
    if not isinstance(transport, FastHandoffTransport):
        raise TypeError("bulk hand-off needs use_fast_handoff(app) first")
    sink = transport.bulk_sinks.get(topic)
    if sink is None:
        sink = transport.bulk_sinks[topic] = BulkSink(topic, high_water)
    return sink
