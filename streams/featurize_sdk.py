"""``Client.featurize``: send a Featurize request, report its progress events, return
the :class:`FeatureResult` (its large parts stay in the object store, referenced)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gravitas.schemas.common import TimeRange
from gravitas.schemas.events import FeatureResult, Featurize, Progress

if TYPE_CHECKING:
    from gravitas.streams.client import Client

ProgressFn = Callable[[Progress], None]


def build_request(
    expression: str,
    layers: Mapping[str, str],
    bbox: tuple[float, float, float, float],
    time: TimeRange | tuple[Any, Any],
    reducers: Sequence[str] = ("mean",),
    **options: Any,
) -> Featurize:
    """A validated :class:`Featurize` (pydantic names any bad field)."""
    if not isinstance(time, TimeRange):
        time = TimeRange(start=time[0], end=time[1])
    fields: dict[str, Any] = {
        "request_id": options.pop("request_id", None) or f"feat-{uuid.uuid4().hex[:12]}",
        "expression": expression,
        "layers": dict(layers),
        "bbox": bbox,
        "time": time,
        "reducers": list(reducers),
    }
    fields.update({k: v for k, v in options.items() if v is not None})
    return Featurize.model_validate(fields)


async def featurize(
    client: Client, request: Featurize, timeout: float, on_progress: ProgressFn | None
) -> FeatureResult:
    """Publish ``request``; call ``on_progress`` for each of its progress events."""

    async def follow() -> None:
        async for ev in client.subscribe("progress"):
            if isinstance(ev, Progress) and ev.request_id == request.request_id:
                assert on_progress is not None
                on_progress(ev)

    task = asyncio.create_task(follow()) if on_progress is not None else None
    try:
        if task is not None:
            await asyncio.sleep(0)  # let the subscription open before publishing
        reply = await client.request(request, request.reply_topic, timeout)
    finally:
        if task is not None:
            await asyncio.sleep(0.2)  # the last progress events trail the answer
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    assert isinstance(reply, FeatureResult)
    return reply
