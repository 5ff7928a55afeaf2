"""``reduce_spatial`` / ``reduce_dimension`` over ``x`` and ``y`` served from the pyramids.

When a spatial reduction runs straight on a ``load_collection`` cube (every layer read
at its native level) with a one-node reducer the pyramid can answer (``count sum min
max mean sd variance``, data from the parameter, nodata ignored), the answer is combined
from two exact parts:

- the whole native blocks inside the cube: the per-block statistics (``count, sum,
  sumsq, min, max`` of the native pixels) of the coarsest pyramid blocks that tile them,
  found by Morton arithmetic (no key scan, the cube's pixels are never built);
- the partial blocks along the cube's edges: the same five statistics computed from
  their pixels, read straight from the store (float64);

see :mod:`gravitas.storage.pixels.region_stats`.

``reduce_dimension`` over ``x`` then ``y`` (or ``y`` then ``x``) with the SAME reducer is
served when the chain equals the whole-cube statistic: ``min``, ``max`` and ``sum`` (a
mean of row means or a count of row counts is not the cube's mean or count, so those
run on the pixels). A cube without a whole block inside, a reducer the graph does not
name unambiguously, or ``GRAVITAS_GRAPH_OVERVIEWS=false`` run on the pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from gravitas.agents.graphs.overviews import Loaded, loaded_cube, simple_reducer
from gravitas.schemas.grid import BLOCK_SIZE
from gravitas.storage.pixels.region_stats import region_stats, stat_value

CHAIN_REDUCERS = frozenset({"min", "max", "sum"})
SPATIAL = ("x", "y")


def reducer_named(graph: Mapping[str, Any], pid: str, dimension: str | None = None) -> str | None:
    """The pyramid reducer of the top-level ``pid`` nodes (over ``dimension``) when all of
    them name the same one; ``None`` when any differs or cannot be served."""
    found = set()
    for spec in graph.values():
        if not isinstance(spec, Mapping) or spec.get("process_id") != pid:
            continue
        args = spec.get("arguments", {})
        if not isinstance(args, Mapping):
            return None
        if dimension is not None and args.get("dimension") != dimension:
            continue
        found.add(simple_reducer(args.get("reducer")))
    if len(found) != 1:
        return None
    (name,) = found
    return name


def _loaded(run: Any, data: Any) -> Loaded | None:
    return loaded_cube(run, data)


def pyramid_reduce(run: Any, data: Any, reducer: str) -> xr.DataArray | None:
    """The whole-cube statistic ``(t, bands)`` from pyramid + edge blocks, or ``None``."""
    loaded = _loaded(run, data)
    if loaded is None:
        return None
    x0, y0, x1, y1 = loaded.px
    b = BLOCK_SIZE
    if -(-x0 // b) > (x1 + 1) // b - 1 or -(-y0 // b) > (y1 + 1) // b - 1:
        return None  # no whole block inside: the pixels are all there is
    times = data["t"].values.astype("datetime64[s]").astype(np.int64)
    values = np.empty((len(times), len(loaded.infos)))
    for bi, info in enumerate(loaded.infos):
        stats, _ = region_stats(run.store, info, loaded.px, [int(t) for t in times])
        values[:, bi] = [stat_value(reducer, s) for s in stats]
    cube = data.transpose("t", "bands", "y", "x")
    template = cube.isel(y=0, x=0, drop=True).drop_vars("spatial_ref", errors="ignore")
    out = xr.DataArray(values, dims=("t", "bands"), coords=dict(template.coords))
    out.attrs["served_from"] = "overviews"
    run.served_from_overviews += 1
    return out


class SpatialReducers:
    """The ``reduce_spatial`` and ``reduce_dimension`` wrappers of one execution."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.pending: dict[int, tuple[Any, str, str, xr.DataArray]] = {}

    def _enabled(self) -> bool:
        return bool(getattr(self.run.services.settings, "graph_overviews", True))

    def reduce_spatial(self, original: Any) -> Any:
        def run(data: Any, reducer: Any, context: Any = None, **kw: Any) -> Any:
            name = reducer_named(self.run.graph, "reduce_spatial") if self._enabled() else None
            if name is not None:
                fast = pyramid_reduce(self.run, data, name)
                if fast is not None:
                    return fast
            return original(data=data, reducer=reducer, context=context, **kw)

        return run

    def reduce_dimension(self, original: Any) -> Any:
        def run(data: Any, reducer: Any, dimension: Any, context: Any = None, **kw: Any) -> Any:
            name = None
            if dimension in SPATIAL and self._enabled():
                name = reducer_named(self.run.graph, "reduce_dimension", dimension)
            if name in CHAIN_REDUCERS:
                first = self.pending.get(id(data))
                if first is not None and first[3] is data and first[1] == name \
                        and first[2] != dimension:  # fmt: skip
                    fast = pyramid_reduce(self.run, first[0], name)
                    if fast is not None:
                        return fast
            out = original(data=data, reducer=reducer, dimension=dimension,
                           context=context, **kw)  # fmt: skip
            if name in CHAIN_REDUCERS and _loaded(self.run, data) is not None:
                self.pending[id(out)] = (data, str(name), str(dimension), out)
            return out

        return run
