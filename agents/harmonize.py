"""The harmonize agent: ``requests.datacube`` -> an AI-ready datacube -> ``DatacubeReady``.

Steps (ARCHITECTURE.md section 6): match the modalities' scenes in the node's catalog,
filter the pairs, retrieve blocks at the common level (onboarding lazily what is only
registered), gap-fill and aggregate in time, cut patches with labels, sample and split,
write Zarr/NetCDF into the object store and register a STAC collection with one item per
split. ``Progress`` events go to ``progress`` on the way. A bad request is answered on
its reply topic (``status="failed"``, ``failed_step``, ``error``) and recorded on
``deadletter``; the worker keeps running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.agents.datacube import (
    StepFailed,
    assemble,
    grid_level,
    match_request,
    retrieve,
    write_datacube,
)
from gravitas.agents.datacube.assemble import Assembled
from gravitas.agents.datacube.match import MatchResult
from gravitas.agents.datacube.plan import step
from gravitas.agents.datacube.retrieve import grid_bbox
from gravitas.agents.datacube.tiled import build_tiled, strip_rows
from gravitas.agents.datacube.write import Written
from gravitas.agents.onboarding import pending_items
from gravitas.agents.parking import parked_on, parking
from gravitas.schemas.base import Event
from gravitas.schemas.codec import encode
from gravitas.schemas.events import DatacubeReady, DatacubeRequested, Progress, Rejected

__all__ = ["HarmonizeAgent", "failure"]


def failure(req: DatacubeRequested, step: str, exc: BaseException) -> list[Emit]:
    """The error reply to the requester and the dead-letter record of a failed request."""
    reason = f"{step}: {exc}"
    reply = DatacubeReady(
        request_id=req.request_id, status="failed", failed_step=step, error=str(exc)
    )
    rejected = Rejected.for_payload(
        encode(req),
        source_topic="requests.datacube",
        source_key=req.request_id,
        error_class=type(exc).__name__,
        reason=reason,
        agent="harmonize",
    )
    return [Emit(req.reply_topic, reply), Emit("deadletter", rejected)]


class HarmonizeAgent(Agent):
    """``requests.datacube`` -> datacube in the object store + STAC + ``DatacubeReady``."""

    name = "harmonize"
    topic = "requests.datacube"

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        assert isinstance(event, DatacubeRequested)
        try:
            return await self._run(event, ctx)
        except StepFailed as exc:
            ctx.log.warning("datacube %s failed at %s: %s", event.request_id, exc.step, exc.error)
            return failure(event, exc.step, exc.error)

    async def _progress(
        self, ctx: AgentContext, req: DatacubeRequested, stage: str, fraction: float, msg: str = ""
    ) -> None:
        await ctx.emit(
            "progress",
            Progress(request_id=req.request_id, stage=stage, fraction=fraction, message=msg),
        )

    def _pending(self, ctx: AgentContext, req: DatacubeRequested, m: MatchResult) -> list[Any]:
        """The registered but not yet onboarded items the matched pairs need."""
        with step("retrieve"):
            bbox = grid_bbox(req, m.pairs)
            found: dict[tuple[str, str], Any] = {}
            for mod in req.modalities:
                for layer in mod.layers:
                    for item in pending_items(
                        ctx, layer, bbox, req.time.start, req.time.end, mod.collection
                    ):
                        found[(str(item["collection"]), str(item["id"]))] = item
            return list(found.values())

    async def _run(self, req: DatacubeRequested, ctx: AgentContext) -> list[Emit]:
        services = ctx.services
        await self._progress(ctx, req, "match", 0.0, f"grid level {_level(req)}")
        matched = await asyncio.to_thread(match_request, services, req)
        await self._progress(
            ctx, req, "filter", 0.15,
            f"{matched.drops.kept} pairs kept, dropped {matched.drops.dropped or 'none'}",
        )  # fmt: skip
        pending = await asyncio.to_thread(self._pending, ctx, req, matched)
        pending = await asyncio.to_thread(
            parked_on, services, self.name, str(req.event_id), pending
        )  # a replay of a request that parked parks again (its resumption answers it)
        if pending:  # parked: published again here once they are onboarded
            return parking(ctx, req, req.request_id, self.topic, pending)
        rows = strip_rows(services, req, matched)
        if rows is not None:  # larger than the memory budget: strip by strip
            await self._progress(ctx, req, "retrieve", 0.25, f"in strips of {rows} rows")
            cube, written = await services.run_compute(build_tiled, services, req, matched, rows)
            await self._progress(ctx, req, "done", 1.0, written.collection_id)
            return self._ready(req, cube, written)
        await self._progress(ctx, req, "retrieve", 0.25, "every scene is onboarded")
        got = await services.run_compute(retrieve, services, req, matched.pairs)
        await self._progress(
            ctx, req, "process", 0.5, f"{got.cube.shape[0]} pairs x {len(got.bands)} bands"
        )
        cube = await services.run_compute(assemble, services, req, got)
        await self._progress(
            ctx, req, "write", 0.75, f"{cube.data.shape[0]} patches of {cube.patches_total}"
        )
        with step("write"):
            written = await services.run_compute(write_datacube, services, req, cube, got, matched)
        await self._progress(ctx, req, "done", 1.0, written.collection_id)
        return self._ready(req, cube, written)

    def _ready(self, req: DatacubeRequested, cube: Assembled, written: Written) -> list[Emit]:
        ready = DatacubeReady(
            request_id=req.request_id,
            collection_id=written.collection_id,
            hrefs=written.hrefs,
            counts=cube.split.counts,
            class_counts=cube.class_counts,
            gap_filled_fraction=min(1.0, max(0.0, cube.gap_filled_fraction)),
        )
        return [Emit("stac.registrations", r) for r in written.registrations] + [
            Emit(req.reply_topic, ready)
        ]


def _level(req: DatacubeRequested) -> int:
    return grid_level(req)
