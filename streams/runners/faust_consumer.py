"""faust's aiokafka consumer with a cheaper per-message hand-off to the streams.

faust's fetch loop (``Consumer._drain_messages``) hands every message to the conductor
through ``Service.wait_first(callback(message), suspend_flow.wait())``: four tasks and
an ``asyncio.wait`` a message, which capped one worker near 5k events/s. Here the
conductor's coroutine is first run synchronously; it almost always finishes without
blocking (the message is put on its stream's queue), and then no task is created. Only
when it does block (flow control during a rebalance, a full stream buffer) is the rest
of it run exactly as faust does, raced against ``suspend_flow`` by ``wait_first``.

Everything else (group membership, assignment, read offsets, gaps, acks, commits) is
faust's own code. The loop below is faust-streaming 0.15.3's ``_drain_messages``
(BSD-3-Clause) with that one change.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator, Coroutine, Generator
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import AppT
from mode import Service, ServiceT


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
    """faust's aiokafka consumer; only the message hand-off in the fetch loop differs."""

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set

        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for

        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = cast(AsyncIterator[Any], getmany(timeout=1.0))
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0

                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            if self.suspend_flow.is_set():
                                await self.wait_first(callback(message), self.suspend_flow.wait())
                            else:
                                coro = cast(Coroutine[Any, Any, Any], callback(message))
                                try:
                                    first = coro.send(None)
                                except StopIteration:
                                    pass
                                else:
                                    await self.wait_first(
                                        _finish(coro, first), self.suspend_flow.wait()
                                    )
                            set_read_offset(tp, offset)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class FastHandoffTransport(faust_aiokafka.Transport):
    """faust's aiokafka transport with :class:`FastHandoffConsumer`."""

    Consumer = FastHandoffConsumer


def use_fast_handoff(app: AppT) -> None:
    """Give ``app`` the fast hand-off consumer (before its consumer is created)."""
    app.transport = FastHandoffTransport(app.conf.broker_consumer, app)
