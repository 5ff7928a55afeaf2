"""The discovery agent: ``PixelSearch`` on ``requests.discovery`` -> ``SearchResult``.

Bad requests (unknown layer, level outside the pyramid) are answered with a
``failed`` result naming the problem, so the requester is never left waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from gravitas.agents.answers import FEATURIZE_UNAVAILABLE, failure_answers
from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.agents.onboarding import pending_items
from gravitas.agents.parking import parking
from gravitas.agents.results import by_reference
from gravitas.agents.routing import forward, owner_of_layer
from gravitas.schemas.base import Event
from gravitas.schemas.errors import GravitasError, InputError, NotFoundError
from gravitas.schemas.events import Featurize, PixelMatch, PixelSearch, SearchResult
from gravitas.storage.pixels.errors import LayerNotFoundError
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
    """Answers pixel searches; a search that needs lazy scenes is parked, not waited for.

    ``Featurize`` is answered as failed until the featurization engine exists.
    """

    name = "discovery"
    topic = "requests.discovery"

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        if isinstance(event, Featurize):
            return failure_answers(event, FEATURIZE_UNAVAILABLE, node_id=ctx.node_id)
        if not isinstance(event, PixelSearch):
            return []
        s = ctx.services
        try:
            t = event.time
            items = await asyncio.to_thread(
                pending_items, ctx, event.layer, event.bbox, t.start, t.end
            )
            if items:
                return parking(ctx, event, event.request_id, self.topic, items)
            result = await asyncio.to_thread(
                run_search, event, s.block_store, s.layers, ctx.node_id
            )
        except LayerNotFoundError as exc:
            result = await self._elsewhere(event, ctx, exc)
        except (InputError, NotFoundError) as exc:
            result = _failed(event, ctx, exc)
        # too large for a message (searched here or on the owner): travels by reference
        result = await asyncio.to_thread(by_reference, s, result, s.settings.inline_result_bytes)
        return [Emit(event.reply_topic, result)]

    async def _elsewhere(
        self, event: PixelSearch, ctx: AgentContext, missing: Exception
    ) -> SearchResult:
        """Run the search on the node that holds the layer; only the result comes back."""
        owner = None
        if event.routed_from is None:
            owner = await asyncio.to_thread(owner_of_layer, ctx.services, event.layer)
        if owner is None:
            return _failed(event, ctx, missing)
        ctx.log.info("routing search %s for %s to node %s", event.request_id, event.layer, owner)
        routed = event.model_copy(update={"routed_from": ctx.node_id})
        try:
            reply = await asyncio.to_thread(
                forward, ctx.services, owner, "requests.discovery", routed, [SearchResult]
            )
        except GravitasError as exc:
            return _failed(event, ctx, exc)
        assert isinstance(reply, SearchResult)
        return reply


def _failed(event: PixelSearch, ctx: AgentContext, exc: Exception) -> SearchResult:
    return SearchResult(
        request_id=event.request_id,
        status="failed",
        error=f"{type(exc).__name__}: {exc}",
        served_by=ctx.node_id,
    )
