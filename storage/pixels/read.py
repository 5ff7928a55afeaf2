"""Read a layer as an xarray.DataArray at any level, and join two layers on one grid.

Levels coarser than native are served from the overview arrays; finer levels repeat
native pixels (pixel ``(x, y)`` at level ``l + d`` lies in ``(x >> d, y >> d)``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import xarray as xr

from gravitas.kernels.grid import bbox_to_pixel_range, pixel_to_lonlat
from gravitas.kernels.morton import morton_encode
from gravitas.schemas.grid import BLOCK_SIZE, MAX_LEVEL
from gravitas.storage.blocks import BlockStore
from gravitas.storage.blocks.base import same_nodata
from gravitas.storage.keys import encode_key, to_epoch
from gravitas.storage.pixels.errors import PixelSearchError
from gravitas.storage.pixels.layers import LayerInfo, LayerRegistry
from gravitas.storage.pixels.search import resolve_level

__all__ = ["MAX_READ_BLOCKS", "join_layers", "read_layer"]

MAX_READ_BLOCKS = 4096
"""Refuse reads that need more blocks per time step than this (use a coarser level)."""
BBox = tuple[float, float, float, float]
_GET_BATCH = 1024
"""Blocks fetched (and decoded on the store's pool) per ``get_many`` call."""


def _fill(info: LayerInfo, level: int) -> tuple[np.dtype, float | int]:
    if info.categorical and info.nodata is not None:
        return np.dtype(info.dtype), info.nodata
    return np.dtype(np.float32), float("nan")


def _mosaics(
    store: BlockStore,
    info: LayerInfo,
    level: int,
    times: list[int],
    px: tuple[int, int, int, int],
) -> np.ndarray:
    """``(time, y, x)``: the pixel window ``px`` (x0, y0, x1, y1) at ``level`` for every
    timestamp, row 0 = north. One ``get_many`` for all blocks of all timestamps (decoded
    on the store's pool); each block's overlap is copied straight into the output."""
    x0, y0, x1, y1 = px
    dtype, fill = _fill(info, level)
    if not times:
        return np.empty((0, y1 - y0 + 1, x1 - x0 + 1), dtype)
    bx0, by0, bx1, by1 = x0 >> 8, y0 >> 8, x1 >> 8, y1 >> 8
    n = (bx1 - bx0 + 1) * (by1 - by0 + 1)
    if n > MAX_READ_BLOCKS:
        raise PixelSearchError(
            f"reading {info.name} at level {level} needs {n} blocks per time step "
            f"(> {MAX_READ_BLOCKS}); use a coarser level or a smaller bbox"
        )
    out = np.full((len(times), y1 - y0 + 1, x1 - x0 + 1), fill, dtype)
    coords = [(bx, by) for by in range(by0, by1 + 1) for bx in range(bx0, bx1 + 1)]
    mortons = [int(morton_encode(bx, by)) for bx, by in coords]
    keys = [encode_key(info.name, level, m, ts) for ts in times for m in mortons]
    step = max(len(coords), _GET_BATCH - _GET_BATCH % len(coords))  # whole time steps
    for start in range(0, len(keys), step):
        for i, got in enumerate(store.get_many_windows(keys[start : start + step]), start):
            if got is None:
                continue
            if got.window is not None and (
                np.dtype(got.dtype) != dtype or not same_nodata(got.nodata, fill)
            ):  # the nodata around the window differs from the mosaic's fill
                got = replace(got, window=None, data=got.block().array)
            _place(out, got.data, got.window, i // len(coords), coords[i % len(coords)], px)
    return out


def _place(
    out: np.ndarray,
    arr: np.ndarray,
    window: tuple[int, int, int, int] | None,
    t: int,
    block: tuple[int, int],
    px: tuple[int, int, int, int],
) -> None:
    """Copy the part of block ``block`` (bx, by) inside the pixel window ``px`` into
    ``out[t]``; ``arr`` holds the block's rows ``window[0]:window[1]`` and columns
    ``window[2]:window[3]`` (the whole block when ``window`` is None; ``out`` already
    holds the fill around it)."""
    x0, y0, x1, y1 = px
    bx, by = block
    b = BLOCK_SIZE
    wr0, wr1, wc0, wc1 = window if window is not None else (0, b, 0, b)
    # block rows run north to south: block row r is pixel y = by * b + b - 1 - r
    gx0, gy1 = max(x0, bx * b + wc0), min(y1, by * b + b - 1 - wr0)
    gx1, gy0 = min(x1, bx * b + wc1 - 1), max(y0, by * b + b - wr1)
    if gx0 > gx1 or gy0 > gy1:
        return  # the data window lies outside the pixel window
    r0 = by * b + b - 1 - gy1 - wr0
    c0 = gx0 - bx * b - wc0
    out[t, y1 - gy1 : y1 - gy0 + 1, gx0 - x0 : gx1 - x0 + 1] = arr[
        r0 : r0 + gy1 - gy0 + 1, c0 : c0 + gx1 - gx0 + 1
    ]


def grid_coords(
    level: int, px: tuple[int, int, int, int], times: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(time, lat, lon)`` coordinates of the pixel window ``px`` at ``level``: pixel
    centres, lat descending, times as UTC ``datetime64[ns]``."""
    lon, _ = pixel_to_lonlat(level, np.arange(px[0], px[2] + 1), 0)
    _, lat = pixel_to_lonlat(level, 0, np.arange(px[3], px[1] - 1, -1))
    tcoord = np.array(
        [np.datetime64(datetime.fromtimestamp(t, UTC).replace(tzinfo=None), "ns") for t in times],
        dtype="datetime64[ns]",
    )
    return tcoord, lat, lon


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
    dtype, fill = _fill(info, src)
    ny, nx = px[3] - px[1] + 1, px[2] - px[0] + 1
    data = _mosaics(store, info, src, times, spx)
    if d and len(times):
        data = np.repeat(np.repeat(data, 1 << d, axis=1), 1 << d, axis=2)
        north = ((spx[3] + 1) << d) - 1
        data = data[:, north - px[3] : north - px[1] + 1, px[0] - (spx[0] << d) :][:, :, :nx]
    if not len(times):
        data = np.empty((0, ny, nx), dtype)
    tcoord, lat, lon = grid_coords(want, px, times)
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
