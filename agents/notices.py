"""In-process notices between agents of one node: a fast path beside shared state.

A requester waiting for other agents' work (a datacube request waiting for onboarding)
polls the shared state (the catalog), which is the truth across worker processes. When
the work runs in the same process, the agent doing it also posts a notice here, so the
waiter wakes at once instead of at its next poll. Notices may be posted from any thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

__all__ = ["Notices"]

K = TypeVar("K", bound=Hashable)


class Notices(Generic[K]):
    """Fan-out of keys to the async watchers registered at the moment of posting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watchers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[K]]] = []

    @contextmanager
    def watch(self) -> Iterator[asyncio.Queue[K]]:
        """A queue that receives every key posted while the ``with`` block runs (open it
        before asking for the work, so no notice is missed)."""
        entry = (asyncio.get_running_loop(), asyncio.Queue[K]())
        with self._lock:
            self._watchers.append(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                self._watchers.remove(entry)

    def post(self, key: K) -> None:
        """Tell every current watcher that ``key`` is done (thread-safe, never blocks)."""
        with self._lock:
            watchers = list(self._watchers)
        for loop, queue in watchers:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, key)
            except RuntimeError:  # that watcher's loop has closed
                continue
