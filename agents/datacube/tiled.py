"""Steps 3-7 strip by strip: a datacube larger than the node's memory budget.

A request whose retrieved stack (pairs x bands x rows x columns, float32) is larger than
``datacube_strip_mb`` is read, processed and cut into patches one strip of whole patch
rows at a time; each strip's patches are written to the Zarr store as it is produced
(:class:`~gravitas.agents.datacube.zarr_v2.ZarrStream`), so memory holds one strip, not
the cube. What stays in memory grows with the number of patches (origins, labels,
lat/lon: a few bytes each) and the window's area (the quicklook picture).

Per pixel the result is the in-memory one: temporal aggregation, temporal gap filling,
valid fractions, labels and the split (decided at the end over every kept patch, like
the in-memory path) are the same, and so are the pairs dropped by
``max_nodata_fraction`` (counted over the whole window in a first read of the strips,
skipped when every modality allows 1). Two things are local to a strip: the spatial
nearest fill (the gaps before a pixel's first or after its last observation, which
temporal interpolation leaves) takes the nearest value inside the strip; the 2nd / 98th
percentiles of ``norm_stats`` are the pixel-count-weighted mean of the strips' (mean,
std, min, max and count are exact). Only ``interpolate`` gap filling, unbalanced
sampling, patches without overlap and Zarr output take this path; other requests are
built in memory.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from gravitas.agents.datacube.assemble import SPATIAL_CELL_PATCHES, Assembled, assemble
from gravitas.agents.datacube.match import MatchResult
from gravitas.agents.datacube.plan import StepFailed, grid_level, step
from gravitas.agents.datacube.retrieve import Retrieved, Window, grid_bbox, retrieve
from gravitas.agents.datacube.write import (
    StreamedCube,
    Written,
    place_patches,
    write_datacube,
)
from gravitas.agents.datacube.zarr_v2 import ZarrStream
from gravitas.agents.services import NodeServices
from gravitas.kernels.datacube import (
    NormStats,
    ScenePair,
    group_split,
    patch_origins,
    spatial_groups,
    stratified_split,
)
from gravitas.kernels.datacube.errors import NoPairsError
from gravitas.kernels.datacube.match import to_epoch_seconds
from gravitas.kernels.grid import bbox_to_pixel_range
from gravitas.schemas.errors import GravitasError
from gravitas.schemas.events import DatacubeRequested
from gravitas.storage.objects.local import LocalObjectStore

__all__ = ["StripMismatchError", "build_tiled", "strip_rows"]


class StripMismatchError(GravitasError):
    """Strips of a tiled datacube kept different pairs or time steps."""


def strip_rows(services: NodeServices, req: DatacubeRequested, m: MatchResult) -> int | None:
    """Rows per strip when the request is built strip by strip, else ``None`` (in memory)."""
    budget = int(services.settings.datacube_strip_mb * 1024 * 1024)
    p = req.patch_size
    eligible = (
        req.output_format == "zarr"
        and req.gap_fill == "interpolate"
        and req.sampling != "balanced"
        and req.stride in (None, p)
        and bool(m.pairs)
    )
    if not eligible:
        return None
    x0, y0, x1, y1 = bbox_to_pixel_range(grid_level(req), grid_bbox(req, m.pairs))
    bands = sum(len(mod.layers) for mod in req.modalities)
    row_bytes = len(m.pairs) * bands * (x1 - x0 + 1) * 4
    if row_bytes * (y1 - y0 + 1) <= budget:
        return None
    return max(p, budget // row_bytes // p * p)


@dataclass
class _Acc:
    """What the strips add up to."""

    origins: list[NDArray[np.int64]] = field(default_factory=list)
    valid: list[NDArray[np.float64]] = field(default_factory=list)
    labels: list[NDArray[np.int64]] = field(default_factory=list)
    tiles: list[NDArray[np.int64]] = field(default_factory=list)
    lat: list[NDArray[np.float64]] = field(default_factory=list)
    lon: list[NDArray[np.float64]] = field(default_factory=list)
    class_names: dict[int, str] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    stats: list[NormStats] = field(default_factory=list)
    filled: int = 0
    values: int = 0
    total: int = 0
    first: Assembled | None = None
    retrieved: Retrieved | None = None

    def add(self, a: Assembled, r: Retrieved, row0: int) -> None:
        if self.first is None:
            self.first, self.retrieved = a, r
        elif not (
            np.array_equal(a.times, self.first.times)
            and self.retrieved is not None
            and np.array_equal(r.times, self.retrieved.times)
            and a.bands == self.first.bands
        ):
            raise StripMismatchError(
                f"strip at row {row0} has {len(r.times)} pairs in {len(a.times)} time steps, "
                f"the first strip {len(self.first.times)} steps: the strips disagree"
            )
        self.origins.append(a.origins + np.array([row0, 0]))
        self.valid.append(a.valid_fraction)
        self.labels.append(a.labels)
        if a.label_tiles is not None:
            self.tiles.append(a.label_tiles)
        self.lat.append(a.lat)
        self.lon.append(a.lon)
        self.class_names.update(a.class_names)
        for k, v in {**r.dropped, **a.dropped}.items():
            self.dropped[k] = self.dropped.get(k, 0) + v
        self.stats.append(a.stats)
        self.filled += int(a.filled.sum())
        self.values += int(a.filled.size)
        self.total += a.patches_total


def _merge_stats(parts: list[NormStats]) -> NormStats:
    count = np.sum([s.count for s in parts], axis=0)
    w = np.array([s.count for s in parts], np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):

        def wmean(values: list[NDArray[np.float64]]) -> NDArray[np.float64]:
            v = np.where(w > 0, np.array(values), 0.0)
            return np.asarray(np.where(count > 0, (v * w).sum(axis=0) / count, np.nan))

        mean = wmean([s.mean for s in parts])
        second = wmean([s.std**2 + s.mean**2 for s in parts])
        std = np.sqrt(np.maximum(second - mean**2, 0.0))
        return NormStats(
            mean=mean,
            std=std,
            min=np.asarray(np.nanmin([s.min for s in parts], axis=0), np.float64),
            max=np.asarray(np.nanmax([s.max for s in parts], axis=0), np.float64),
            p2=wmean([s.p2 for s in parts]),
            p98=wmean([s.p98 for s in parts]),
            count=np.asarray(count, np.int64),
        )


def _finish(req: DatacubeRequested, acc: _Acc) -> Assembled:
    """The Assembled of the whole cube, its patch arrays as lazy placeholders."""
    import dask.array as da

    first = acc.first
    if first is None:
        raise StepFailed(
            "patch",
            NoPairsError(
                "no strip of the cube kept a patch; lower min_valid_fraction, use a smaller "
                "patch_size or another bbox"
            ),
        )
    origins = np.concatenate(acc.origins).astype(np.int64)
    labels = np.concatenate(acc.labels).astype(np.int64)
    p = req.patch_size
    with step("split"):
        if req.spatial_split:
            groups = spatial_groups(origins, SPATIAL_CELL_PATCHES * p)
            split = group_split(labels, groups, req.split, seed=req.seed)
        else:
            split = stratified_split(labels, req.split, seed=req.seed)
    shape = (origins.shape[0], *first.data.shape[1:])
    chunk = (1, *shape[1:])
    with np.errstate(invalid="ignore", divide="ignore"):
        stats = _merge_stats(acc.stats)
    return Assembled(
        times=first.times,
        bands=first.bands,
        origins=origins,
        data=cast(Any, da.zeros(shape, dtype=np.float32, chunks=chunk)),
        filled=cast(Any, da.zeros(shape, dtype=bool, chunks=chunk)),
        valid_fraction=np.concatenate(acc.valid),
        lat=np.concatenate(acc.lat),
        lon=np.concatenate(acc.lon),
        labels=labels,
        label_tiles=np.concatenate(acc.tiles) if acc.tiles else None,
        class_names=acc.class_names,
        split=split,
        stats=stats,
        gap_filled_fraction=acc.filled / acc.values if acc.values else 0.0,
        patches_total=acc.total,
        dropped=acc.dropped,
    )


def _keep_pairs(
    services: NodeServices, req: DatacubeRequested, m: MatchResult, window: Window, rows: int
) -> tuple[list[ScenePair], dict[str, int]]:
    """The pairs the in-memory path keeps (its nodata test over the whole window), found
    strip by strip (a first read of the window; skipped when no modality can drop a pair)."""
    order = np.argsort(to_epoch_seconds([p.reference.datetime for p in m.pairs]), kind="stable")
    pairs = [m.pairs[int(i)] for i in order]
    if all(mod.max_nodata_fraction >= 1.0 for mod in req.modalities):
        return pairs, {}
    x0, y0, x1, y1 = window
    loose = _no_drops(req)
    missing = np.zeros((len(req.modalities), len(pairs)), np.int64)
    for top in range(y1, y0 - 1, -rows):
        r = retrieve(services, loose, pairs, (x0, max(y0, top - rows + 1), x1, top))
        for k, mod in enumerate(req.modalities):
            idx = [i for i, owner in enumerate(r.modality_of_band) if owner == mod.name]
            missing[k] += (~np.isfinite(r.cube[:, idx])).any(axis=1).sum(axis=(1, 2))
    frac = missing / float((x1 - x0 + 1) * (y1 - y0 + 1))
    keep = np.ones(len(pairs), dtype=bool)
    dropped: dict[str, int] = {}
    for k, mod in enumerate(req.modalities):
        bad = keep & (frac[k] > mod.max_nodata_fraction)
        if bad.any():
            dropped[f"{mod.name}: nodata in the window above {mod.max_nodata_fraction:g}"] = int(
                bad.sum()
            )
        keep &= ~bad
    if not keep.any():
        raise StepFailed(
            "retrieve",
            NoPairsError(
                f"every matched pair has too much nodata in the window after reading: "
                f"{dropped}; raise max_nodata_fraction or choose another bbox/time"
            ),
        )
    return [p for p, k in zip(pairs, keep, strict=True) if k], dropped


def _no_drops(req: DatacubeRequested) -> DatacubeRequested:
    mods = [mod.model_copy(update={"max_nodata_fraction": 1.0}) for mod in req.modalities]
    return req.model_copy(update={"modalities": mods})


def build_tiled(
    services: NodeServices, req: DatacubeRequested, m: MatchResult, rows: int
) -> tuple[Assembled, Written]:
    """Retrieve, process, patch and write the cube in strips of ``rows`` grid rows."""
    level = grid_level(req)
    x0, y0, x1, y1 = bbox_to_pixel_range(level, grid_bbox(req, m.pairs))
    p = req.patch_size
    height = (y1 - y0 + 1) // p * p  # rows below the last whole patch row hold no patch
    prefix = f"datacubes/{req.request_id}"
    store = services.object_store
    chunk_tail: tuple[int, ...] | None = None
    with tempfile.TemporaryDirectory(prefix="gravitas-cube-") as tmp:
        local = isinstance(store, LocalObjectStore)
        root = store.root / prefix if local else Path(tmp)  # type: ignore[attr-defined]
        root.mkdir(parents=True, exist_ok=True)
        zarr = ZarrStream(root / "cube.zarr")
        acc = _Acc()
        kept, acc.dropped = _keep_pairs(services, req, m, (x0, y0, x1, y1), rows)
        loose = _no_drops(req)  # pairs were dropped above, over the whole window
        canvases: dict[int, NDArray[np.float64]] = {}
        for row0 in range(0, height, rows):
            window = (x0, y1 - min(row0 + rows, height) + 1, x1, y1 - row0)
            try:
                r = retrieve(services, loose, kept, window)
                a = assemble(services, req, r)
            except StepFailed as exc:
                if not isinstance(exc.error, NoPairsError):
                    raise
                # no patch of this strip is kept: its candidates count as dropped
                n = patch_origins(window[3] - window[1] + 1, x1 - x0 + 1, p, req.stride)
                reason = f"valid fraction below {req.min_valid_fraction:g}"
                acc.dropped[reason] = acc.dropped.get(reason, 0) + int(n.shape[0])
                acc.total += int(n.shape[0])
                continue
            with step("process"):
                acc.add(a, r, row0)
            chunk_tail = a.data.shape[1:]
            with step("write"):
                zarr.append("data", a.data, (1, *chunk_tail))
                zarr.append("gap_filled", a.filled.astype(np.uint8), (1, *chunk_tail))
                for mod in req.modalities:
                    band = next(i for i, b in enumerate(a.bands) if b.startswith(f"{mod.name}:"))
                    canvas = canvases.setdefault(band, np.full((height, x1 - x0 + 1), np.nan))
                    place_patches(canvas, a, band, a.origins + np.array([row0, 0]))
        cube = _finish(req, acc)
        lo = cube.origins.min(axis=0)
        hi = cube.origins.max(axis=0) + p
        for band, canvas in canvases.items():
            canvases[band] = canvas[lo[0] : hi[0], lo[1] : hi[1]]
        assert acc.retrieved is not None
        whole = Retrieved(
            level=level,
            bbox=grid_bbox(req, m.pairs),
            window=(x0, y0, x1, y1),
            times=acc.retrieved.times,
            bands=acc.retrieved.bands,
            cube=np.empty((0, 0, 0, 0), np.float32),
            modality_of_band=acc.retrieved.modality_of_band,
            dropped={},
        )
        with step("write"):
            written = write_datacube(
                services, req, cube, whole, m, StreamedCube(root, zarr, canvases)
            )
    return cube, written
