"""``/web/live``: server-sent events for the web page (``sse-starlette``): a
``pipeline`` event every ``interval`` seconds (topics with rates and lag, dead letters,
running requests) and an ``event`` per record read, from one shared
:class:`~gravitas.streams.monitor.snapshot.PipelineWatcher` started on first use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Query
from sse_starlette import EventSourceResponse

from gravitas.schemas.settings import Settings
from gravitas.streams.monitor.federation import FederationWatcher
from gravitas.streams.monitor.snapshot import PipelineWatcher, kafka_lag
from gravitas.streams.topology import Topology
from gravitas.streams.transports.base import Transport

__all__ = ["live_router", "watcher_for"]

MAX_QUEUE = 500


def watcher_for(
    settings: Settings,
    topology: Topology,
    transport: Transport,
    federation: FederationWatcher | None = None,
) -> PipelineWatcher:
    """A watcher of this node's pipeline (with consumer-group lag on Kafka, and every
    allow-listed node of the federation when ``federation`` is given)."""
    lag = None
    if not settings.is_memory:
        bootstrap = settings.broker.removeprefix("kafka://")
        physical = {topology.physical(t) for t in topology.names}

        async def lag_now() -> dict[tuple[str, str], int]:
            return await kafka_lag(bootstrap, settings.consumer_group, physical)

        lag = lag_now
    return PipelineWatcher(
        topology, transport, settings.node_id, settings.broker, lag=lag, federation=federation
    )


def live_router(
    settings: Settings,
    topology: Topology,
    transport: Transport,
    federation: FederationWatcher | None = None,
) -> APIRouter:
    shared: dict[str, PipelineWatcher] = {}
    lock = asyncio.Lock()

    async def stop_watcher() -> None:
        if "w" in shared:
            await shared.pop("w").stop()

    router = APIRouter(on_shutdown=[stop_watcher])

    async def watcher() -> PipelineWatcher:
        async with lock:
            if "w" not in shared:
                w = watcher_for(settings, topology, transport, federation)
                await w.start()
                shared["w"] = w
            return shared["w"]

    @router.get("/web/live", include_in_schema=False)
    async def live(interval: float = Query(2.0, ge=0.5, le=60.0)) -> EventSourceResponse:
        w = await watcher()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_QUEUE)

        def listen(summary: dict[str, Any]) -> None:
            if not queue.full():
                queue.put_nowait(summary)

        async def stream() -> AsyncIterator[dict[str, str]]:
            w.listeners.append(listen)
            try:
                while True:
                    snap = await w.snapshot()
                    yield {"event": "pipeline", "data": orjson.dumps(snap.to_dict()).decode()}
                    deadline = asyncio.get_running_loop().time() + interval
                    while (left := deadline - asyncio.get_running_loop().time()) > 0:
                        try:
                            item = await asyncio.wait_for(queue.get(), left)
                        except TimeoutError:
                            break
                        yield {"event": "event", "data": orjson.dumps(item).decode()}
            finally:
                w.listeners.remove(listen)

        return EventSourceResponse(stream(), ping=15)

    return router
