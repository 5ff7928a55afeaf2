"""The pixel store as a lazy, dask-backed xarray: one chunk per stored block and time step.

``open_layer(store, registry, "stageiv", bbox, t0, t1)`` returns a ``(time, lat, lon)``
:class:`xarray.DataArray` whose dask graph has one task per 256 x 256 block and time
step (``time_chunk=-1``: one task per block reading every time step in one request).
Building the array reads nothing, not even keys: the keys that exist are listed once
(a key scan, no values read) when the first chunk is computed, so a reduction served
from the overview pyramids never pays for it. Chunks without a stored block then read
nothing (they are filled), and the blocks that exist are read only when computed.
Levels coarser than native read the overview arrays (the pyramid keeps one per level),
as :func:`read_layer` does.

``open_layers`` stacks several layers along a ``bands`` dimension (a multi-band
collection); times are joined (a band missing at a time is fill).
"""

from __future__ import annotations

import threading
from datetime import datetime
from itertools import product
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.highlevelgraph import HighLevelGraph

from gravitas.kernels.grid import bbox_to_pixel_range
from gravitas.kernels.morton import morton_encode
from gravitas.schemas.grid import BLOCK_SIZE
from gravitas.storage.blocks import BlockStore
from gravitas.storage.keys import (
    BUCKET_SECONDS,
    decode_key,
    layer_id,
    scan_ranges,
    time_bucket,
    to_epoch,
)
from gravitas.storage.pixels.errors import PixelSearchError
from gravitas.storage.pixels.layers import LayerInfo, LayerRegistry
from gravitas.storage.pixels.read import BBox, _fill, _mosaics, grid_coords
from gravitas.storage.pixels.search import resolve_level

__all__ = ["MAX_LAZY_CHUNKS", "open_layer", "open_layers"]

MAX_LAZY_CHUNKS = 2_000_000
"""Refuse graphs with more chunks than this (ask for a coarser level or a smaller box)."""


def _edges(lo: int, hi: int) -> list[tuple[int, int, int]]:
    """``(block index, first pixel, last pixel)`` of the blocks covering pixels lo..hi."""
    out = []
    for b in range(lo >> 8, (hi >> 8) + 1):
        out.append((b, max(lo, b * BLOCK_SIZE), min(hi, b * BLOCK_SIZE + BLOCK_SIZE - 1)))
    return out


def _stored(
    store: BlockStore, info: LayerInfo, level: int, times: list[int], box: tuple[int, ...]
) -> set[tuple[int, int]]:
    """``(timestamp, morton)`` of the blocks that exist (keys only, no values read)."""
    if not times:
        return set()
    wanted = set(times)
    found: set[tuple[int, int]] = set()
    bx0, by0, bx1, by1 = box
    days = sorted({time_bucket(t) for t in times})  # only the days that hold a time step
    for day in days:
        t = day * BUCKET_SECONDS
        for lo, hi in scan_ranges(info.name, level, t, t, (bx0, by0, bx1, by1)):
            for key in store.scan_keys(lo, hi):
                k = decode_key(key)
                if k.timestamp in wanted:
                    found.add((k.timestamp, k.morton))
    return found


class _Presence:
    """The ``(timestamp, morton)`` of the stored blocks of one lazy array, listed on the
    first question (one key scan of the array's block box and time window, once)."""

    def __init__(
        self, store: BlockStore, info: LayerInfo, level: int, times: list[int], box: tuple[int, ...]
    ) -> None:
        self._args = (store, info, level, times, box)
        self._found: set[tuple[int, int]] | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # to dask.distributed workers: no lock
        return {"_args": self._args, "_found": self._found}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._args, self._found = state["_args"], state["_found"]
        self._lock = threading.Lock()

    def stored(self) -> set[tuple[int, int]]:
        with self._lock:
            if self._found is None:
                self._found = _stored(*self._args)
            return self._found


def _read_chunk(
    presence: _Presence,
    store: BlockStore,
    info: LayerInfo,
    level: int,
    times: list[int],
    morton: int,
    px: tuple[int, int, int, int],
) -> np.ndarray:
    """The pixels of one chunk (its times x one block's window); only the stored blocks
    are read, the rest is fill."""
    found = presence.stored()
    have = [ts for ts in times if (ts, morton) in found]
    dtype, fill = _fill(info, level)
    if len(have) == len(times):
        return _mosaics(store, info, level, times, px)
    out = np.full((len(times), px[3] - px[1] + 1, px[2] - px[0] + 1), fill, dtype)
    if have:
        got = _mosaics(store, info, level, have, px)
        out[[times.index(ts) for ts in have]] = got
    return out


def open_layer(
    store: BlockStore,
    registry: LayerRegistry,
    layer: str,
    bbox: BBox,
    t0: int | datetime,
    t1: int | datetime,
    level: int | None = None,
    time_chunk: int = 1,
) -> xr.DataArray:
    """``(time, lat, lon)`` lazy array of ``layer`` over ``bbox`` and ``[t0, t1]``.

    ``time_chunk`` time steps per chunk (``-1``: all of them, one chunk per block: what
    per-pixel reductions over time want, read in one request per block).

    Continuous layers are float32 with NaN for nodata; categorical layers keep their dtype
    and nodata (``attrs["nodata"]``). Coordinates are pixel centres (lat descending), CF
    attributes and the CRS (EPSG:4326, through rioxarray) are set.
    """
    info = registry.get(layer)
    if level is not None and level > info.native_level:
        raise PixelSearchError(
            f"layer {layer} is stored down to level {info.native_level}; a lazy read at level "
            f"{level} would only repeat pixels: ask for level <= {info.native_level}"
        )
    lvl = resolve_level(info, level)
    x0, y0, x1, y1 = bbox_to_pixel_range(lvl, bbox)
    times = registry.times(layer, to_epoch(t0), to_epoch(t1))
    cols, rows = _edges(x0, x1), _edges(y0, y1)[::-1]  # rows run north to south
    step = len(times) if time_chunk < 1 else time_chunk
    tchunks = [times[i : i + step] for i in range(0, len(times), max(step, 1))]
    n = len(tchunks) * len(cols) * len(rows)
    if n > MAX_LAZY_CHUNKS:
        raise PixelSearchError(
            f"{layer} at level {lvl} over {bbox} is {n} chunks (> {MAX_LAZY_CHUNKS}); "
            "use a coarser level, a smaller bbox or a shorter time window"
        )
    dtype, fill = _fill(info, lvl)
    box = (cols[0][0], rows[-1][0], cols[-1][0], rows[0][0])
    presence = _Presence(store, info, lvl, times, box)
    name = (
        f"gravitas-{layer}-{lvl}-{x0}-{y0}-{x1}-{y1}-{layer_id(layer)}-{step}-{hash(tuple(times))}"
    )
    codes = morton_encode(np.array([c[0] for c in cols])[None, :],
                          np.array([r[0] for r in rows])[:, None])  # fmt: skip
    dsk: dict[Any, Any] = {}
    for (t, tss), (j, (_, ry0, ry1)), (i, (_, cx0, cx1)) in product(
        enumerate(tchunks), enumerate(rows), enumerate(cols)
    ):
        dsk[(name, t, j, i)] = (_read_chunk, presence, store, info, lvl, tss,
                                int(codes[j, i]), (cx0, ry0, cx1, ry1))  # fmt: skip
    chunks = (
        tuple(len(c) for c in tchunks),
        tuple(r1 - r0 + 1 for _, r0, r1 in rows),
        tuple(c1 - c0 + 1 for _, c0, c1 in cols),
    )
    if not times:  # an empty window: zero time steps, nothing to read
        data = da.zeros((0, sum(chunks[1]), sum(chunks[2])), dtype, chunks=((0,), *chunks[1:]))
    else:
        graph = HighLevelGraph.from_collections(name, dsk, dependencies=[])
        data = da.Array(graph, name, chunks, dtype=dtype)
    return _wrap(data, layer, info, lvl, times, (x0, y0, x1, y1), fill)


def _wrap(
    data: da.Array,
    layer: str,
    info: LayerInfo,
    lvl: int,
    times: list[int],
    px: tuple[int, int, int, int],
    fill: Any,
) -> xr.DataArray:
    tcoord, lat, lon = grid_coords(lvl, px, times)
    arr = xr.DataArray(
        data,
        dims=("time", "lat", "lon"),
        coords={"time": tcoord, "lat": lat, "lon": lon},
        name=layer,
        attrs={
            "layer": layer,
            "level": lvl,
            "nodata": fill,
            "categorical": int(info.categorical),
        },
    )
    arr["lat"].attrs.update(standard_name="latitude", units="degrees_north", axis="Y")
    arr["lon"].attrs.update(standard_name="longitude", units="degrees_east", axis="X")
    arr["time"].attrs.update(standard_name="time", axis="T")
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    arr = arr.rio.set_spatial_dims(x_dim="lon", y_dim="lat")
    return arr.rio.write_crs("EPSG:4326")


def open_layers(
    store: BlockStore,
    registry: LayerRegistry,
    layers: list[str],
    bbox: BBox,
    t0: int | datetime,
    t1: int | datetime,
    level: int | None = None,
    time_chunk: int = 1,
) -> xr.DataArray:
    """``(bands, time, lat, lon)``: several layers on one grid (the finest level they all
    have when ``level`` is None), their times joined."""
    if not layers:
        raise PixelSearchError("open_layers needs at least one layer name")
    if len(set(layers)) != len(layers):
        raise PixelSearchError(f"layer names repeat in {layers}")
    infos = [registry.get(name) for name in layers]
    lvl = min(i.native_level for i in infos) if level is None else level
    parts = [open_layer(store, registry, name, bbox, t0, t1, lvl, time_chunk) for name in layers]
    if len(parts) == 1:  # nothing to join: the one layer with a bands dimension
        stacked = parts[0].expand_dims("bands")
    else:
        stacked = xr.concat(parts, dim="bands", join="outer", fill_value=np.nan)
    stacked = stacked.assign_coords(bands=list(layers))
    stacked.name = "+".join(layers)
    stacked.attrs = {"layers": list(layers), "level": lvl}
    return stacked.rio.write_crs("EPSG:4326")
