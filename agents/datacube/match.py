"""Steps 1-2: find every modality's scenes in the node's catalog, pair them in space and
time (:func:`gravitas.kernels.datacube.match_scenes`) and filter the pairs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gravitas.agents.datacube.plan import (
    StepFailed,
    UnknownLayerError,
    grid_level,
    modality_window,
)
from gravitas.agents.onboarding import layer_matches
from gravitas.agents.registration import LAYER_PREFIX, ONBOARDED
from gravitas.agents.services import NodeServices
from gravitas.kernels.datacube import DropReport, ScenePair, SceneRecord, filter_pairs, match_scenes
from gravitas.kernels.datacube.errors import NoPairsError
from gravitas.kernels.datacube.match import bbox_intersection
from gravitas.kernels.grid import pixel_size
from gravitas.schemas.events import DatacubeRequested, Modality
from gravitas.storage.catalog.base import SearchParams
from gravitas.streams.policy import is_transient

__all__ = ["MatchResult", "match_request", "scene_record"]


@dataclass(frozen=True)
class MatchResult:
    """The pairs that survived the filter, and what was dropped and why."""

    pairs: list[ScenePair]
    drops: DropReport
    scenes: dict[str, int]
    """Scenes found per modality."""


def _rfc3339(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def _when(props: dict[str, Any]) -> datetime | None:
    """The item's datetime, or the middle of its start/end interval."""
    if props.get("datetime"):
        return datetime.fromisoformat(str(props["datetime"]).replace("Z", "+00:00"))
    start, end = props.get("start_datetime"), props.get("end_datetime")
    if start and end:
        t0 = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        t1 = datetime.fromisoformat(str(end).replace("Z", "+00:00"))
        return t0 + (t1 - t0) / 2
    return None


def scene_record(item: dict[str, Any]) -> SceneRecord | None:
    """A catalog item as the matcher sees it (None without bbox or time)."""
    when = _when(item.get("properties", {}))
    bbox = item.get("bbox")
    if when is None or not bbox:
        return None
    w, s, e, n = (float(v) for v in (bbox[:2] + bbox[-2:] if len(bbox) == 6 else bbox))
    return SceneRecord(str(item["id"]), (w, s, e, n), when, dict(item.get("properties", {})))


def _items(services: NodeServices, params: SearchParams) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        page = services.catalog.search(dataclasses.replace(params, token=token))
        yield from page.items
        token = page.next_token
        if not token:
            return


def _provides_layer(item: dict[str, Any], layer: str) -> bool:
    """True if the item's scene is (or would be, once onboarded) indexed as ``layer``."""
    prefix = str(item.get("properties", {}).get(LAYER_PREFIX, ""))
    return bool(prefix) and layer_matches(prefix, layer)


def _provides(item: dict[str, Any], modality: Modality) -> bool:
    return any(_provides_layer(item, layer) for layer in modality.layers)


def _pending_provider(items: list[dict[str, Any]], layer: str) -> bool:
    """True if one of ``items`` (registered, not onboarded) would provide ``layer``."""
    return any(_provides_layer(i, layer) for i in items)


def modality_scenes(
    services: NodeServices, req: DatacubeRequested, modality: Modality, reference: bool
) -> list[SceneRecord]:
    """The scenes of one modality in the request's bbox and (widened) time window.

    Raises :class:`UnknownLayerError` when a layer is neither indexed nor provided by a
    registered item that is still waiting to be onboarded.
    """
    start, end = modality_window(req, modality, reference)
    params = SearchParams(
        bbox=tuple(req.bbox),
        datetime=f"{_rfc3339(start)}/{_rfc3339(end)}",
        collections=(modality.collection,) if modality.collection else None,
        limit=500,
    )
    found = [i for i in _items(services, params) if _provides(i, modality)]
    missing = [layer for layer in modality.layers if not services.layers.exists(layer)]
    if missing:
        # bands of a scene not yet onboarded are known only after onboarding: a layer is
        # known if a waiting item provides its prefix (the matched ones first, then any)
        waiting = [i for i in found if not i.get("properties", {}).get(ONBOARDED, True)]
        if any(not _pending_provider(waiting, layer) for layer in missing):
            anywhere = SearchParams(
                collections=(modality.collection,) if modality.collection else None, limit=500
            )
            waiting = [
                i for i in _items(services, anywhere)
                if not i.get("properties", {}).get(ONBOARDED, True)
            ]  # fmt: skip
        for layer in missing:
            if not _pending_provider(waiting, layer):
                indexed = sorted(info.name for info in services.layers.list())
                raise UnknownLayerError(
                    f"modality {modality.name!r}: layer {layer!r} is neither indexed nor "
                    f"registered on this node; indexed layers: {indexed}; announce its scenes "
                    "on scenes.new first or fix the layer name"
                )
    records = [r for r in (scene_record(i) for i in found) if r is not None]
    return records


def match_request(services: NodeServices, req: DatacubeRequested) -> MatchResult:
    """Match (step 1) and filter (step 2); raises :class:`StepFailed` with the step."""
    level = grid_level(req)
    scenes: dict[str, list[SceneRecord]] = {}
    try:
        for i, m in enumerate(req.modalities):
            scenes[m.name] = modality_scenes(services, req, m, reference=i == 0)
        empty = [name for name, s in scenes.items() if not s]
        if empty:
            raise NoPairsError(
                f"no scenes of modality {empty} intersect bbox {tuple(req.bbox)} and time "
                f"{_rfc3339(req.time.start)}/{_rfc3339(req.time.end)} (within each modality's "
                "time_tolerance_s); the intersection is empty: widen the bbox or time range"
            )
        tolerances = {m.name: m.time_tolerance_s for m in req.modalities}
        pairs = match_scenes(scenes, req.modalities[0].name, tolerances)
    except Exception as exc:
        if is_transient(exc):  # the runner retries the request
            raise
        raise StepFailed("match", exc) from exc
    clipped, outside = [], 0
    for p in pairs:
        box = bbox_intersection(p.bbox, tuple(req.bbox))  # type: ignore[arg-type]
        if box is None:
            outside += 1
        else:
            clipped.append(dataclasses.replace(p, bbox=box))
    try:
        kept, report = filter_pairs(
            clipped,
            pixel_size_deg=pixel_size(level),
            patch_size=req.patch_size,
            max_nodata_fraction={m.name: m.max_nodata_fraction for m in req.modalities},
            max_cloud_cover={m.name: m.max_cloud_cover for m in req.modalities},
            where={m.name: m.where for m in req.modalities if m.where},
        )
        if outside:
            report.dropped["outside the request bbox"] = outside
        if not kept:
            raise NoPairsError(
                f"every matched pair was dropped ({report.total_dropped}): "
                f"{dict(sorted(report.dropped.items()))}; the patch of {req.patch_size} px at "
                f"level {level} ({req.patch_size * pixel_size(level):g} deg) may be larger "
                "than the area: use a smaller patch_size, a finer level or a larger bbox"
            )
    except Exception as exc:
        if is_transient(exc):  # the runner retries the request
            raise
        raise StepFailed("filter", exc) from exc
    return MatchResult(kept, report, {k: len(v) for k, v in scenes.items()})
