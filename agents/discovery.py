"""The discovery agent: ``PixelSearch`` -> ``SearchResult`` and ``Featurize`` ->
``FeatureResult``, both on ``requests.discovery``.

Bad requests (unknown layer, level outside the pyramid) are answered with a
``failed`` result naming the problem, so the requester is never left waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.agents.featurize import failed as featurize_failed
from gravitas.agents.featurize import featurize
from gravitas.agents.featurize_outputs import store_outputs
from gravitas.agents.onboarding import pending_items
from gravitas.agents.parking import parked_on, parking
from gravitas.agents.results import by_reference
from gravitas.agents.routing import forward, owner_of_layer
from gravitas.schemas.base import Event
from gravitas.schemas.common import TimeRange
from gravitas.schemas.errors import (
    GravitasError,
    InputError,
    NotFoundError,
    StorageError,
    TransportError,
)
from gravitas.schemas.events import (
    FeatureResult,
    Featurize,
    ItemRegistered,
    PixelMatch,
    PixelSearch,
    Progress,
    SearchResult,
)
from gravitas.storage.pixels.errors import LayerNotFoundError
from gravitas.storage.pixels.search import search_pixels, split_antimeridian


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


def pending_items_many(
    ctx: AgentContext, layers: list[str], bbox: tuple[float, float, float, float], time: TimeRange
) -> list[dict[str, Any]]:
    """Items not yet onboarded that ``layers`` need in ``bbox`` (both sides of 180)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for layer in sorted(set(layers)):
        for box in split_antimeridian(bbox):
            for item in pending_items(ctx, layer, box, time.start, time.end):
                found[(str(item["collection"]), str(item["id"]))] = item
    return list(found.values())


class DiscoveryAgent(Agent):
    """Answers pixel searches and featurize requests (see :mod:`gravitas.agents.featurize`);
    a request that needs lazy scenes is parked, not waited for."""

    name = "discovery"
    topic = "requests.discovery"

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        if isinstance(event, Featurize):
            items = await asyncio.to_thread(
                pending_items_many, ctx, list(event.layers.values()), event.bbox, event.time
            )
            items = await asyncio.to_thread(
                parked_on, ctx.services, self.name, str(event.event_id), items
            )
            if items:
                return parking(ctx, event, event.request_id, self.topic, items)
            return await self._featurize(event, ctx)
        if not isinstance(event, PixelSearch):
            return []
        s = ctx.services
        try:
            items = await asyncio.to_thread(
                pending_items_many,
                ctx,
                [event.layer],
                event.bbox,
                event.time,
            )
            items = await asyncio.to_thread(parked_on, s, self.name, str(event.event_id), items)
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

    async def _featurize(self, event: Featurize, ctx: AgentContext) -> list[Emit]:
        """Compute features next to the data (or on the node that owns the layers);
        failures are answered, naming the cause; large parts travel by reference."""
        s = ctx.services
        regs: list[ItemRegistered] = []
        await self._progress(ctx, event, "compute", 0.0, f"{event.over} {list(event.reducers)}")
        try:
            if event.process_graph is not None:  # the openEO engine (agents/graphs)
                from gravitas.agents.graphs.features import graph_features

                result = await s.run_compute(graph_features, event, s, ctx.node_id)
                await self._progress(ctx, event, "done", 1.0, result.status)
                return [Emit(event.reply_topic, result)]
            computed = await s.run_compute(
                featurize, event, s.block_store, s.layers, ctx.node_id, s.data_dir
            )
            await self._progress(ctx, event, "store", 0.8)
            result, regs = await asyncio.to_thread(store_outputs, s, event, computed)
        except LayerNotFoundError as exc:
            result = await self._featurize_elsewhere(event, ctx, exc)
        except (InputError, NotFoundError) as exc:
            result = featurize_failed(event, ctx.node_id, exc)
        except (StorageError, TransportError):
            raise  # transient: the runner's policy retries
        except Exception as exc:  # a user computation the numeric libraries refused
            ctx.log.warning("featurize %s failed: %s", event.request_id, exc)
            result = featurize_failed(event, ctx.node_id, exc)
        await self._progress(ctx, event, "done", 1.0, result.status)
        return [Emit(event.reply_topic, result), *(Emit("stac.registrations", r) for r in regs)]

    @staticmethod
    async def _progress(
        ctx: AgentContext, event: Featurize, stage: str, fraction: float, msg: str = ""
    ) -> None:
        await ctx.emit(
            "progress",
            Progress(request_id=event.request_id, stage=stage, fraction=fraction, message=msg),
        )

    async def _featurize_elsewhere(
        self, event: Featurize, ctx: AgentContext, missing: Exception
    ) -> FeatureResult:
        """Run the request on the node that owns its layers; only the result comes back."""
        owners: set[str | None] = set()
        if event.routed_from is None:
            for layer in sorted(set(event.layers.values())):
                owners.add(await asyncio.to_thread(owner_of_layer, ctx.services, layer))
        if len(owners) != 1 or None in owners:
            return featurize_failed(event, ctx.node_id, missing)
        owner = str(owners.pop())
        ctx.log.info("routing featurize %s to node %s", event.request_id, owner)
        routed = event.model_copy(update={"routed_from": ctx.node_id})
        try:
            reply = await asyncio.to_thread(
                forward, ctx.services, owner, "requests.discovery", routed, [FeatureResult]
            )
        except GravitasError as exc:
            return featurize_failed(event, ctx.node_id, exc)
        assert isinstance(reply, FeatureResult)
        return reply

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
