"""In-process notices wake an async watcher from another thread."""

from __future__ import annotations

import asyncio
import threading

from gravitas.agents.notices import Notices


async def test_notice_from_a_thread_reaches_every_watcher() -> None:
    notices = Notices[tuple[str, str]]()
    notices.post(("c", "before"))  # nobody watches yet: dropped, no error
    with notices.watch() as first, notices.watch() as second:
        worker = threading.Thread(target=notices.post, args=(("c", "item-1"),))
        worker.start()
        got = await asyncio.wait_for(first.get(), 5)
        assert got == ("c", "item-1")
        assert await asyncio.wait_for(second.get(), 5) == ("c", "item-1")
        worker.join()
        assert first.empty()  # the notice posted before watching never arrives
    notices.post(("c", "after"))  # watchers gone: nothing queued anywhere
    assert first.empty() and second.empty()
