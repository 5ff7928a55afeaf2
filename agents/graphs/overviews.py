"""Zonal statistics served from the overview pyramids instead of the pixels.

The pyramid keeps, for every block at every level, ``count, sum, sumsq, min, max`` of
the NATIVE pixels below it (:mod:`gravitas.storage.pixels.overviews`). When
``aggregate_spatial`` runs straight on a ``load_collection`` cube, its reducer is one of
``count sum min max mean sd variance`` (data from the parameter, nodata ignored), each
geometry is rasterized onto the cube's grid (pixel centres inside) and its statistics
are combined from the pyramid statistics of the native blocks wholly inside it (merged
up the quadtree: a handful of 64-byte reads) and the pixels of the blocks its edge cuts
(:mod:`gravitas.storage.pixels.region_stats`). The result equals the pixel computation
(tested); anything else falls back to the pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from gravitas.kernels.grid import bbox_to_pixel_range
from gravitas.storage.pixels.layers import LayerInfo
from gravitas.storage.pixels.region_stats import region_stats, stat_value

REDUCERS = frozenset({"count", "sum", "min", "max", "mean", "sd", "variance"})


@dataclass(frozen=True)
class Loaded:
    """What ``load_collection`` made: the cube, its layers, level and pixel range."""

    cube: xr.DataArray
    infos: list[LayerInfo]
    level: int
    px: tuple[int, int, int, int]
    """Inclusive ``(x0, y0, x1, y1)`` pixel range of the cube (y grows northwards)."""


def remember(run: Any, cube: xr.DataArray, infos: list[LayerInfo], bbox: Any) -> None:
    level = int(cube.attrs.get("level", min(i.native_level for i in infos)))
    run.loaded[id(cube)] = Loaded(cube, infos, level, bbox_to_pixel_range(level, bbox))


def simple_reducer(callback: Any) -> str | None:
    """The process id of a one-node reducer callback that the pyramid can answer."""
    if not isinstance(callback, Mapping):
        return None
    graph = callback.get("process_graph")
    if not isinstance(graph, Mapping) or len(graph) != 1:
        return None
    (node,) = graph.values()
    if not isinstance(node, Mapping) or node.get("process_id") not in REDUCERS:
        return None
    args = node.get("arguments", {})
    if args.get("data") != {"from_parameter": "data"}:
        return None
    if set(args) - {"data", "ignore_nodata"} or args.get("ignore_nodata", True) is not True:
        return None
    return str(node["process_id"])


def loaded_cube(run: Any, data: Any) -> Loaded | None:
    """What ``load_collection`` made when ``data`` is that very cube, untouched, with
    every layer at its native level; else ``None``."""
    loaded: Loaded | None = run.loaded.get(id(data))
    if loaded is None or loaded.cube is not data:
        return None
    if any(i.native_level != loaded.level for i in loaded.infos):
        return None  # a layer read at a coarser level: its stats describe finer pixels
    if set(data.dims) != {"t", "bands", "y", "x"} or data.sizes["bands"] != len(loaded.infos):
        return None
    x0, y0, x1, y1 = loaded.px
    if data.sizes["x"] != x1 - x0 + 1 or data.sizes["y"] != y1 - y0 + 1:
        return None
    return loaded


def try_aggregate(run: Any, data: Any, geometries: Any, node: str) -> xr.DataArray | None:
    """Zonal statistics from the pyramid when exact; ``None`` to compute from pixels."""
    loaded = loaded_cube(run, data)
    if loaded is None:
        return None
    spec = run.graph.get(node, {})
    reducer = simple_reducer(spec.get("arguments", {}).get("reducer")) if spec else None
    if reducer is None:
        return None
    from gravitas.agents.graphs.aggregate import geometry_mask
    from gravitas.agents.graphs.zones import zones_of

    zones = zones_of(geometries, None, None, node)
    times = [int(t) for t in data["t"].values.astype("datetime64[s]").astype(np.int64)]
    values = np.empty((len(zones.geoms), len(times), len(loaded.infos)), np.float64)
    for gi, geom in enumerate(zones.geoms):
        mask = geometry_mask(loaded.cube, geom)
        for bi, info in enumerate(loaded.infos):
            stats, _ = region_stats(run.store, info, loaded.px, times, mask)
            values[gi, :, bi] = [stat_value(reducer, s) for s in stats]
    template = data.isel(y=0, x=0, drop=True).drop_vars("spatial_ref", errors="ignore")
    out = xr.DataArray(
        values,
        dims=("geometry", "t", "bands"),
        coords={**{k: v for k, v in template.coords.items()}, "geometry": zones.labels},
    )
    out.attrs["served_from"] = "overviews"
    run.served_from_overviews += 1
    return out
