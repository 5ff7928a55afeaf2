"""Steps 4-6: gap filling and temporal aggregation, patches with labels, sampling and split.

Each modality is first aggregated onto the request's time steps (its ``aggregation``
over the pairs whose reference time falls in a step), then the whole cube is gap-filled
(linear in time, then nearest in space) with a mask of the filled pixels. Patches are
cut on the unfilled validity (averaged over time steps) and copied from the filled
cube. With a label layer, patches without any labelled pixel are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gravitas.agents.datacube.plan import StepFailed
from gravitas.agents.datacube.retrieve import Retrieved
from gravitas.agents.services import NodeServices
from gravitas.kernels.datacube import (
    NormStats,
    SplitResult,
    aggregate_time,
    balance_classes,
    band_statistics,
    crop_pad,
    cut_patches,
    group_split,
    label_patches,
    patch_origins,
    spatial_groups,
    stratified_split,
    to_level,
    valid_fractions,
)
from gravitas.kernels.datacube.errors import NoPairsError
from gravitas.kernels.datacube.gapfill_model import gap_fill_with
from gravitas.kernels.grid import pixel_to_lonlat
from gravitas.schemas.errors import RequestError
from gravitas.schemas.events import DatacubeRequested, LabelSpec
from gravitas.storage.keys import to_epoch
from gravitas.storage.pixels.read import read_layer
from gravitas.streams.policy import is_transient

__all__ = ["SPATIAL_CELL_PATCHES", "Assembled", "assemble", "label_layer", "time_bins"]

SPATIAL_CELL_PATCHES = 4
"""With ``spatial_split`` patches are grouped in cells of this many patches a side."""


@dataclass
class Assembled:
    """The patches of a datacube with labels and split, ready to write."""

    times: NDArray[np.float64]
    """Centre of each time step (epoch seconds)."""
    bands: list[str]
    origins: NDArray[np.int64]
    """(n, 2) top-left ``(row, col)`` in the grid window."""
    data: NDArray[np.float32]
    """(n, time, band, y, x), gap-filled."""
    filled: NDArray[np.bool_]
    """(n, time, band, y, x): True where a gap was filled."""
    valid_fraction: NDArray[np.float64]
    lat: NDArray[np.float64]
    """(n, y) pixel-centre latitudes of each patch."""
    lon: NDArray[np.float64]
    """(n, x) pixel-centre longitudes of each patch."""
    labels: NDArray[np.int64]
    """(n,) majority class code of each patch (0 without a label layer)."""
    label_tiles: NDArray[np.int64] | None
    class_names: dict[int, str]
    split: SplitResult
    stats: NormStats
    gap_filled_fraction: float
    patches_total: int
    """Candidate patches before the valid-fraction, label and sampling steps."""
    dropped: dict[str, int]

    @property
    def class_counts(self) -> dict[str, dict[str, int]]:
        """Patches per split and class name."""
        return {
            s: {self.class_names.get(int(c), c): n for c, n in per.items()}
            for s, per in self.split.class_counts.items()
        }


def time_bins(req: DatacubeRequested, times: NDArray[np.float64]) -> NDArray[np.int64]:
    """Index of the request time step holding each time."""
    start = float(to_epoch(req.time.start))
    return np.floor((times - start) / req.time_step_s).astype(np.int64)


def label_layer(
    services: NodeServices,
    label: LabelSpec,
    level: int,
    bbox: tuple[float, float, float, float],
    shape: tuple[int, int],
    window: tuple[int, int, int, int],
) -> tuple[NDArray[np.int64], dict[int, str]]:
    """The label codes on the grid window (vector polygons, or a categorical raster)."""
    from gravitas.storage.vector import VectorStore

    store = VectorStore.for_data_dir(services.data_dir)
    try:
        if label.layer in {v.name for v in store.layers()}:
            info = store.layer(label.layer)
            if label.property and label.property != info.class_field:
                raise RequestError(
                    f"label property {label.property!r} is not the class field of vector "
                    f"layer {label.layer!r} ({info.class_field!r}); reload the layer with "
                    f"class_field={label.property!r} or omit property"
                )
            codes, _ = store.label_pixels(label.layer, level, bbox)
            return np.asarray(codes, np.int64).reshape(shape), info.class_names()
    finally:
        store.close()
    info_r = services.layers.get(label.layer)  # NotFoundError names the layer
    arr = read_layer(services.block_store, services.layers, label.layer, bbox, 0, 1 << 40,
                     info_r.native_level)  # fmt: skip
    if arr.shape[0] == 0:
        raise RequestError(f"label layer {label.layer!r} has no data in bbox {bbox}")
    x0, y1 = int(arr.attrs["x0"]), int(arr.attrs["y1"])
    h, w = arr.shape[-2:]
    src = (x0, y1 - h + 1, x0 + w - 1, y1)
    out, win = to_level(arr.values[-1], src, info_r.native_level, level, method="nearest",
                        nodata=label.nodata)  # fmt: skip
    codes = crop_pad(out, win, window, fill=label.nodata)
    values = np.unique(codes[codes != label.nodata])
    return np.asarray(codes, np.int64), {int(v): str(int(v)) for v in values}


def _process(
    req: DatacubeRequested, r: Retrieved
) -> tuple[NDArray[np.float64], NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_]]:
    bins = time_bins(req, r.times)
    aggregated = []
    for m in req.modalities:
        idx = [i for i, owner in enumerate(r.modality_of_band) if owner == m.name]
        agg, ids = aggregate_time(r.cube[:, idx], bins, m.aggregation, times=r.times)
        aggregated.append(agg)
    raw = np.concatenate(aggregated, axis=1).astype(np.float32)
    start = float(to_epoch(req.time.start))
    centres = start + (ids.astype(np.float64) + 0.5) * req.time_step_s
    filled, mask = gap_fill_with(req.gap_fill, raw, centres, req.seed)
    return centres, raw, np.asarray(filled, np.float32), mask


def assemble(services: NodeServices, req: DatacubeRequested, r: Retrieved) -> Assembled:
    """Process (4), patch (5), sample and split (6); raises :class:`StepFailed`."""
    try:
        centres, raw, filled, mask = _process(req, r)
        stats = band_statistics(raw)
    except Exception as exc:
        if is_transient(exc):  # the runner retries the request
            raise
        raise StepFailed("process", exc) from exc
    p = req.patch_size
    dropped: dict[str, int] = {}
    try:
        height, width = raw.shape[-2:]
        origins = patch_origins(height, width, p, req.stride)
        valid = np.mean([valid_fractions(step, origins, p) for step in raw], axis=0)
        keep = valid >= req.min_valid_fraction
        if (~keep).any():
            dropped[f"valid fraction below {req.min_valid_fraction:g}"] = int((~keep).sum())
        labels: NDArray[np.int64] = np.zeros(origins.shape[0], np.int64)
        tiles: NDArray[np.int64] | None = None
        names: dict[int, str] = {0: "none"}
        if req.label is not None:
            codes, names = label_layer(
                services, req.label, r.level, r.bbox, (height, width), r.window
            )
            majority, tiles = label_patches(codes, origins, p, nodata=req.label.nodata)
            labels = np.asarray(majority, np.int64)
            unlabelled = keep & (labels == req.label.nodata)
            if unlabelled.any():
                dropped["no labelled pixel"] = int(unlabelled.sum())
            keep &= labels != req.label.nodata
        if not keep.any():
            raise NoPairsError(
                f"none of the {origins.shape[0]} patches of {p} px is kept: {dropped}; "
                "lower min_valid_fraction, use a smaller patch_size or another bbox"
            )
    except Exception as exc:
        if is_transient(exc):  # the runner retries the request
            raise
        raise StepFailed("patch", exc) from exc
    try:
        sel = np.flatnonzero(keep)
        if req.sampling == "balanced":
            ignore = (req.label.nodata,) if req.label else ()
            chosen = balance_classes(labels[sel], seed=req.seed, ignore=ignore)
            if chosen.size < sel.size:
                dropped["class balancing"] = int(sel.size - chosen.size)
            sel = sel[chosen]
        o = origins[sel]
        if req.spatial_split:
            groups = spatial_groups(o, SPATIAL_CELL_PATCHES * p)
            split = group_split(labels[sel], groups, req.split, seed=req.seed)
        else:
            split = stratified_split(labels[sel], req.split, seed=req.seed)
    except Exception as exc:
        if is_transient(exc):  # the runner retries the request
            raise
        raise StepFailed("split", exc) from exc
    data = np.moveaxis(cut_patches(filled, o, p), 0, 0)
    fmask = cut_patches(mask, o, p)
    x0, _y0, _x1, y1 = r.window
    lon, _ = pixel_to_lonlat(r.level, x0 + o[:, 1:2] + np.arange(p), 0)
    _, lat = pixel_to_lonlat(r.level, 0, y1 - (o[:, 0:1] + np.arange(p)))
    return Assembled(
        times=centres,
        bands=r.bands,
        origins=o,
        data=np.asarray(data, np.float32),
        filled=np.asarray(fmask, bool),
        valid_fraction=valid[sel],
        lat=lat,
        lon=lon,
        labels=labels[sel],
        label_tiles=None if tiles is None else tiles[sel].astype(np.int64),
        class_names=names,
        split=split,
        stats=stats,
        gap_filled_fraction=float(fmask.mean()) if fmask.size else 0.0,
        patches_total=int(origins.shape[0]),
        dropped=dropped,
    )
