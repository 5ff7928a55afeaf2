"""The discovery agent: ``PixelSearch`` on ``requests.discovery`` -> ``SearchResult``.

Bad requests (unknown layer, level outside the pyramid) are answered with a
``failed`` result naming the problem, so the requester is never left waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.schemas.base import Event
from gravitas.schemas.errors import InputError, NotFoundError
from gravitas.schemas.events import PixelMatch, PixelSearch, SearchResult
from gravitas.storage.pixels.search import search_pixels


def run_search(event: PixelSearch, store: object, registry: object, node_id: str) -> SearchResult:
    """Execute a :class:`PixelSearch` against a block store and layer registry."""
    p = event.predicate
    hits = search_pixels(
        store,  # type: ignore[arg-type]
        registry,  # type: ignore[arg-type]
        event.layer,
        p.op,
        p.value,
        event.bbox,
        event.time.start,
        event.time.end,
        high=p.high,
        level=event.level,
        limit=event.limit,
    )
    lon, lat = hits.lonlat()
    matches = [
        PixelMatch(
            lon=float(a), lat=float(b), time=datetime.fromtimestamp(int(t), UTC), value=float(v)
        )
        for a, b, t, v in zip(lon, lat, hits.t, hits.value, strict=True)
    ]
    return SearchResult(
        request_id=event.request_id,
        matches=matches,
        total_matches=hits.total,
        counts_per_time={
            datetime.fromtimestamp(t, UTC).isoformat(): n for t, n in hits.counts.items()
        },
        blocks_read=hits.blocks_read,
        blocks_total=hits.blocks_total,
        truncated=hits.truncated,
        served_by=node_id,
    )


class DiscoveryAgent(Agent):
    """Answers pixel searches (Featurize requests are left to the featurization agent)."""

    name = "discovery"
    topic = "requests.discovery"

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        if not isinstance(event, PixelSearch):
            return []
        s = ctx.services
        try:
            result = await asyncio.to_thread(
                run_search, event, s.block_store, s.layers, ctx.node_id
            )
        except (InputError, NotFoundError) as exc:
            result = SearchResult(
                request_id=event.request_id,
                status="failed",
                error=f"{type(exc).__name__}: {exc}",
                served_by=ctx.node_id,
            )
        return [Emit(event.reply_topic, result)]
