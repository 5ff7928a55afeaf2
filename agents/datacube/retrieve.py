"""Step 3: read every modality's layers from the pixel store on one grid window.

Each layer is read at the request's level: coarser layers (ERA5) are repeated onto the
finer pixels; finer layers are read at their native level and averaged (``resampling``
= ``average``/``bilinear``) or sampled (``nearest``) in 2**d x 2**d blocks, both integer
shifts of the nested grid (the overview arrays serve reads too large for that, so a
request right after an ingest never waits for the overview agent). For every matched
pair the layer's timestamp nearest the pair's reference time (within the modality's
tolerance) is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from gravitas.agents.datacube.plan import StepFailed, grid_level
from gravitas.agents.services import NodeServices
from gravitas.kernels.datacube import ScenePair, crop_pad, nearest_steps, to_level
from gravitas.kernels.datacube.errors import NoPairsError
from gravitas.kernels.datacube.match import bbox_intersection, to_epoch_seconds
from gravitas.kernels.datacube.resample import CoarsenMethod
from gravitas.kernels.grid import bbox_to_pixel_range, pixel_to_lonlat
from gravitas.schemas.events import DatacubeRequested, Modality
from gravitas.schemas.grid import pixel_size
from gravitas.storage.keys import to_epoch
from gravitas.storage.pixels.errors import PixelSearchError
from gravitas.storage.pixels.read import read_layer
from gravitas.streams.policy import is_transient

__all__ = ["FMASK_GOOD", "Retrieved", "grid_bbox", "retrieve", "window_bbox"]

FMASK_GOOD = (0, 1)
"""Quality-layer values kept (Fmask clear land and water); other pixels become NaN."""
Window = tuple[int, int, int, int]


@dataclass
class Retrieved:
    """The raw (unfilled) stacks of every modality on the common grid window."""

    level: int
    bbox: tuple[float, float, float, float]
    """The bbox read (the request bbox clipped to the matched scenes)."""
    window: Window
    """Inclusive pixel range ``(x0, y0, x1, y1)`` at ``level``; row 0 is ``y1``."""
    times: NDArray[np.float64]
    """Reference time of each kept pair (epoch seconds, sorted)."""
    bands: list[str]
    """``modality:layer`` of each band."""
    cube: NDArray[np.float32]
    """``(pair, band, y, x)``, NaN where missing."""
    modality_of_band: list[str]
    dropped: dict[str, int] = field(default_factory=dict)
    """Pairs dropped after reading, by reason (too much nodata in the window)."""


def grid_bbox(req: DatacubeRequested, pairs: list[ScenePair]) -> tuple[float, float, float, float]:
    """The request bbox clipped to the union of the pairs' common bboxes."""
    union = (
        min(p.bbox[0] for p in pairs),
        min(p.bbox[1] for p in pairs),
        max(p.bbox[2] for p in pairs),
        max(p.bbox[3] for p in pairs),
    )
    box = bbox_intersection(union, tuple(req.bbox))  # type: ignore[arg-type]
    assert box is not None  # the filter kept only pairs inside the request bbox
    return box


def _window(level: int, bbox: tuple[float, float, float, float]) -> Window:
    return bbox_to_pixel_range(level, bbox)


def _read_times(
    services: NodeServices,
    layer: str,
    bbox: tuple[float, float, float, float],
    t0: int,
    t1: int,
    level: int,
    target: Window,
    resampling: str,
) -> tuple[list[int], NDArray[np.float32]]:
    """Every timestamp of ``layer`` in ``[t0, t1]`` on the target window: (times, (t, y, x))."""
    store, registry = services.block_store, services.layers
    native = registry.get(layer).native_level
    if native > level:
        try:
            arr = read_layer(store, registry, layer, bbox, t0, t1, native)
        except PixelSearchError:  # too many native blocks: use the overview arrays
            arr = None
        if arr is not None:
            x0, y1 = int(arr.attrs["x0"]), int(arr.attrs["y1"])
            h, w = arr.shape[-2:]
            src = (x0, y1 - h + 1, x0 + w - 1, y1)
            method: CoarsenMethod = "nearest" if resampling == "nearest" else "mean"
            out, win = to_level(_float(arr), src, native, level, method=method)
            return _stamps(arr), np.asarray(crop_pad(out, win, target), dtype=np.float32)
    arr = read_layer(store, registry, layer, bbox, t0, t1, level)
    return _stamps(arr), _float(arr)


def _stamps(arr: xr.DataArray) -> list[int]:
    return [int(t) for t in arr["time"].values.astype("datetime64[s]").astype(np.int64)]


def _float(arr: xr.DataArray) -> NDArray[np.float32]:
    """The ``(t, y, x)`` values as float32 with NaN for nodata."""
    values = arr.values
    if values.dtype.kind != "f":
        nodata = arr.attrs.get("nodata")
        values = np.where(values == nodata, np.nan, values.astype(np.float32))
    return np.asarray(values, dtype=np.float32)


def _layer_stack(
    services: NodeServices,
    req: DatacubeRequested,
    modality: Modality,
    layer: str,
    times: NDArray[np.float64],
    bbox: tuple[float, float, float, float],
    level: int,
    target: Window,
) -> NDArray[np.float32]:
    """``(pair, y, x)`` of one layer: the nearest timestamp to each pair, NaN if none."""
    tol = timedelta(seconds=modality.time_tolerance_s)
    stamps = services.layers.times(
        layer, to_epoch(req.time.start - tol), to_epoch(req.time.end + tol)
    )
    rows, cols = target[3] - target[1] + 1, target[2] - target[0] + 1
    out = np.full((times.size, rows, cols), np.nan, dtype=np.float32)
    if not stamps:
        return out
    idx, _ = nearest_steps(times, np.asarray(stamps, np.float64), modality.time_tolerance_s)
    used = sorted({int(stamps[int(i)]) for i in idx if i >= 0})
    if used:
        got, arr = _read_times(
            services, layer, bbox, used[0], used[-1], level, target, modality.resampling
        )
        slot = {ts: k for k, ts in enumerate(got)}
        for p, i in enumerate(idx):
            if i >= 0:
                out[p] = arr[slot[int(stamps[int(i)])]]
    if modality.quality_layer:
        q = _layer_stack(
            services,
            req,
            modality.model_copy(update={"quality_layer": None, "resampling": "nearest"}),
            modality.quality_layer,
            times,
            bbox,
            level,
            target,
        )
        out[~np.isin(q, FMASK_GOOD)] = np.nan
    return out


def window_bbox(level: int, window: Window) -> tuple[float, float, float, float]:
    """A bbox whose pixel range at ``level`` is exactly ``window`` (edges nudged inside)."""
    x0, y0, x1, y1 = window
    (w, e), (s, n) = pixel_to_lonlat(level, [x0, x1 + 1], [y0, y1 + 1], center=False)
    eps = 1e-3 * pixel_size(level)
    return (float(w) + eps, float(s) + eps, float(e) - eps, float(n) - eps)


def retrieve(
    services: NodeServices,
    req: DatacubeRequested,
    pairs: list[ScenePair],
    window: Window | None = None,
) -> Retrieved:
    """Read every band of every kept pair; drop pairs with too much nodata (step 3).
    ``window`` (a part of the request's grid window, e.g. a strip) reads only that part."""
    try:
        level = grid_level(req)
        bbox = grid_bbox(req, pairs) if window is None else window_bbox(level, window)
        target = _window(level, bbox) if window is None else window
        times = np.sort(to_epoch_seconds([p.reference.datetime for p in pairs]))
        stacks: list[NDArray[np.float32]] = []
        bands: list[str] = []
        owners: list[str] = []
        dropped: dict[str, int] = {}
        keep = np.ones(times.size, dtype=bool)
        for m in req.modalities:
            layers = [
                _layer_stack(services, req, m, layer, times, bbox, level, target)
                for layer in m.layers
            ]
            missing = np.stack([~np.isfinite(a) for a in layers]).any(axis=0)
            frac = missing.reshape(times.size, -1).mean(axis=1)
            bad = keep & (frac > m.max_nodata_fraction)
            if bad.any():
                reason = f"{m.name}: nodata in the window above {m.max_nodata_fraction:g}"
                dropped[reason] = int(bad.sum())
            keep &= ~bad
            stacks.extend(layers)
            bands.extend(f"{m.name}:{layer}" for layer in m.layers)
            owners.extend(m.name for _ in m.layers)
        if not keep.any():
            raise NoPairsError(
                f"every matched pair has too much nodata in the window after reading: "
                f"{dropped}; raise max_nodata_fraction or choose another bbox/time"
            )
        cube = np.stack(stacks, axis=1)[keep]
    except StepFailed:
        raise
    except Exception as exc:
        if is_transient(exc):  # the runner retries the request
            raise
        raise StepFailed("retrieve", exc) from exc
    return Retrieved(level, bbox, target, times[keep], bands, cube, owners, dropped)
