"""Read a layer as an xarray.DataArray at any level, and join two layers on one grid.

Levels coarser than native are served from the overview arrays; finer levels repeat
native pixels (pixel ``(x, y)`` at level ``l + d`` lies in ``(x >> d, y >> d)``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import numpy as np
import xarray as xr

from gravitas.kernels.grid import bbox_to_pixel_range, pixel_to_lonlat
from gravitas.kernels.morton import morton_encode
from gravitas.schemas.grid import BLOCK_SIZE, MAX_LEVEL
from gravitas.storage.blocks import BlockStore
from gravitas.storage.keys import encode_key, to_epoch
from gravitas.storage.pixels.errors import PixelSearchError
from gravitas.storage.pixels.layers import LayerInfo, LayerRegistry
from gravitas.storage.pixels.search import resolve_level

__all__ = ["MAX_READ_BLOCKS", "join_layers", "read_layer"]

MAX_READ_BLOCKS = 4096
"""Refuse reads that need more blocks per time step than this (use a coarser level)."""
BBox = tuple[float, float, float, float]


def _fill(info: LayerInfo, level: int) -> tuple[np.dtype, float | int]:
    if info.categorical and info.nodata is not None:
        return np.dtype(info.dtype), info.nodata
    return np.dtype(np.float32), float("nan")


def _mosaic(
    store: BlockStore, info: LayerInfo, level: int, ts: int, px: tuple[int, int, int, int]
) -> np.ndarray:
    """The pixel window ``px`` (x0, y0, x1, y1) at ``level``, row 0 = north."""
    x0, y0, x1, y1 = px
    bx0, by0, bx1, by1 = x0 >> 8, y0 >> 8, x1 >> 8, y1 >> 8
    n = (bx1 - bx0 + 1) * (by1 - by0 + 1)
    if n > MAX_READ_BLOCKS:
        raise PixelSearchError(
            f"reading {info.name} at level {level} needs {n} blocks per time step "
            f"(> {MAX_READ_BLOCKS}); use a coarser level or a smaller bbox"
        )
    dtype, fill = _fill(info, level)
    b = BLOCK_SIZE
    out = np.full(((by1 - by0 + 1) * b, (bx1 - bx0 + 1) * b), fill, dtype)
    coords = [(bx, by) for by in range(by0, by1 + 1) for bx in range(bx0, bx1 + 1)]
    keys = [encode_key(info.name, level, int(morton_encode(bx, by)), ts) for bx, by in coords]
    for (bx, by), blk in zip(coords, store.get_many(keys), strict=True):
        if blk is None:
            continue
        r = (by1 - by) * b
        c = (bx - bx0) * b
        out[r : r + b, c : c + b] = blk.array
    top = by1 * b + b - 1
    return out[top - y1 : top - y0 + 1, x0 - bx0 * b : x1 - bx0 * b + 1]


def read_layer(
    store: BlockStore,
    registry: LayerRegistry,
    layer: str,
    bbox: BBox,
    t0: int | datetime,
    t1: int | datetime,
    level: int | None = None,
) -> xr.DataArray:
    """``(time, lat, lon)`` array of a layer over a bbox and time window at ``level``.

    Continuous layers come back as float32 with NaN for nodata; categorical layers keep
    their dtype and nodata (in ``attrs``). Coordinates are pixel centres; lat descends.
    """
    info = registry.get(layer)
    want = info.native_level if level is None else level
    if not 1 <= want <= MAX_LEVEL:
        raise PixelSearchError(f"level must be in 1..{MAX_LEVEL}, got {want}")
    src = resolve_level(info, min(want, info.native_level))
    d = want - src
    px = bbox_to_pixel_range(want, bbox)
    spx = (px[0] >> d, px[1] >> d, px[2] >> d, px[3] >> d)
    times = registry.times(layer, to_epoch(t0), to_epoch(t1))
    slices = []
    for ts in times:
        arr = _mosaic(store, info, src, ts, spx)
        if d:
            arr = np.repeat(np.repeat(arr, 1 << d, axis=0), 1 << d, axis=1)
            north = ((spx[3] + 1) << d) - 1
            arr = arr[north - px[3] : north - px[1] + 1, px[0] - (spx[0] << d) :][
                :, : px[2] - px[0] + 1
            ]
        slices.append(arr)
    dtype, fill = _fill(info, src)
    ny, nx = px[3] - px[1] + 1, px[2] - px[0] + 1
    data = np.stack(slices) if slices else np.empty((0, ny, nx), dtype)
    lon, _ = pixel_to_lonlat(want, np.arange(px[0], px[2] + 1), 0)
    _, lat = pixel_to_lonlat(want, 0, np.arange(px[3], px[1] - 1, -1))
    tcoord = np.array(
        [np.datetime64(datetime.fromtimestamp(t, UTC).replace(tzinfo=None), "ns") for t in times],
        dtype="datetime64[ns]",
    )
    return xr.DataArray(
        data,
        dims=("time", "lat", "lon"),
        coords={"time": tcoord, "lat": lat, "lon": lon},
        name=layer,
        attrs={
            "layer": layer,
            "level": want,
            "source_level": src,
            "nodata": fill,
            "categorical": int(info.categorical),
            "crs": "EPSG:4326",
            "x0": px[0],
            "y1": px[3],
        },
    )


def join_layers(
    store: BlockStore,
    registry: LayerRegistry,
    a: str,
    b: str,
    bbox: BBox,
    t0: int | datetime,
    t1: int | datetime,
    level: int | Literal["finer", "coarser"] = "finer",
) -> tuple[xr.DataArray, xr.DataArray]:
    """Two layers on the same pixels: at the finer or coarser of their native levels
    (or a given level). Both arrays share lat/lon exactly; each keeps its own times."""
    ia, ib = registry.get(a), registry.get(b)
    if level == "finer":
        lvl = max(ia.native_level, ib.native_level)
    elif level == "coarser":
        lvl = min(ia.native_level, ib.native_level)
    else:
        lvl = int(level)
    return (
        read_layer(store, registry, a, bbox, t0, t1, lvl),
        read_layer(store, registry, b, bbox, t0, t1, lvl),
    )
