"""``reduce_spatial`` / ``reduce_dimension`` over ``x`` and ``y`` served from the pyramids.

When a spatial reduction runs straight on a ``load_collection`` cube (every layer read
at its native level) with a one-node reducer the pyramid can answer (``count sum min
max mean sd variance``, data from the parameter, nodata ignored), the answer is combined
from two exact parts:

- the whole native blocks inside the cube: the per-block statistics (``count, sum,
  sumsq, min, max`` of the native pixels) of the coarsest pyramid blocks that tile them;
- the partial blocks along the cube's edges: the same five statistics computed from the
  lazy pixel blocks of at most four strips (float64).

``reduce_dimension`` over ``x`` then ``y`` (or ``y`` then ``x``) with the SAME reducer is
served when the chain equals the whole-cube statistic: ``min``, ``max`` and ``sum`` (a
mean of row means or a count of row counts is not the cube's mean or count, so those
run on the pixels). A cube without a whole block inside, a reducer the graph does not
name unambiguously, or ``GRAVITAS_GRAPH_OVERVIEWS=false`` run on the pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dask
import numpy as np
import xarray as xr

from gravitas.agents.graphs.overviews import Loaded, _stats, _value, simple_reducer
from gravitas.schemas.grid import BLOCK_SIZE

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
    loaded: Loaded | None = run.loaded.get(id(data))
    if loaded is None or loaded.cube is not data:
        return None
    if any(i.native_level != loaded.level for i in loaded.infos):
        return None
    if set(data.dims) != {"t", "bands", "y", "x"} or data.sizes["bands"] != len(loaded.infos):
        return None
    x0, y0, x1, y1 = loaded.px
    if data.sizes["x"] != x1 - x0 + 1 or data.sizes["y"] != y1 - y0 + 1:
        return None
    return loaded


def _chunk_stats(block: np.ndarray) -> np.ndarray:
    """``count, sum, sumsq, min, max`` of one ``(t, bands, y, x)`` chunk in one pass:
    ``(t, bands, 1, 1, 5)``."""
    v = block.astype(np.float64).reshape(block.shape[0], block.shape[1], -1)
    ok = np.isfinite(v)
    z = np.where(ok, v, 0.0)
    stats = [ok.sum(-1), z.sum(-1), (z * z).sum(-1),
             np.where(ok, v, np.inf).min(-1, initial=np.inf),
             np.where(ok, v, -np.inf).max(-1, initial=-np.inf)]  # fmt: skip
    return np.stack(stats, axis=-1)[:, :, None, None, :]


def _edge_stats(strips: list[xr.DataArray], shape: tuple[int, int]) -> np.ndarray:
    """``(t, bands, 5)`` statistics of the strips' pixels: one pass over each chunk (lazy
    reads of the blocks they cross), the per-chunk statistics combined here."""
    import dask.array as da

    out = np.zeros((*shape, 5))
    out[..., 3], out[..., 4] = np.inf, -np.inf
    parts = []
    for s in strips:
        arr = s.data if isinstance(s.data, da.Array) else da.from_array(s.values)
        ny, nx = len(arr.chunks[2]), len(arr.chunks[3])
        chunks = (arr.chunks[0], arr.chunks[1], (1,) * ny, (1,) * nx, (5,))
        parts.append(da.map_blocks(_chunk_stats, arr, new_axis=4, chunks=chunks,
                                   dtype=np.float64, meta=np.empty((0,) * 5)))  # fmt: skip
    for got in dask.compute(*parts):
        out[..., :3] += got[..., :3].sum(axis=(2, 3))
        out[..., 3] = np.minimum(out[..., 3], got[..., 3].min(axis=(2, 3)))
        out[..., 4] = np.maximum(out[..., 4], got[..., 4].max(axis=(2, 3)))
    return out


def pyramid_reduce(run: Any, data: Any, reducer: str) -> xr.DataArray | None:
    """The whole-cube statistic ``(t, bands)`` from pyramid + edge strips, or ``None``."""
    loaded = _loaded(run, data)
    if loaded is None:
        return None
    x0, y0, x1, y1 = loaded.px
    b = BLOCK_SIZE
    bx0, bx1 = -(-x0 // b), (x1 + 1) // b - 1
    by0, by1 = -(-y0 // b), (y1 + 1) // b - 1
    if bx0 > bx1 or by0 > by1:
        return None  # no whole block inside: the pixels are all there is
    c0, c1 = bx0 * b - x0, (bx1 + 1) * b - x0
    r0, r1 = y1 - ((by1 + 1) * b - 1), y1 - by0 * b + 1
    ny, nx = data.sizes["y"], data.sizes["x"]
    cube = data.transpose("t", "bands", "y", "x")
    strips = [
        cube.isel(y=slice(0, r0)),
        cube.isel(y=slice(r1, ny)),
        cube.isel(y=slice(r0, r1), x=slice(0, c0)),
        cube.isel(y=slice(r0, r1), x=slice(c1, nx)),
    ]
    strips = [s for s in strips if s.sizes["y"] and s.sizes["x"]]
    times = data["t"].values.astype("datetime64[s]").astype(np.int64)
    stats = np.empty((len(times), len(loaded.infos), 5))
    for ti, ts in enumerate(times):
        for bi, info in enumerate(loaded.infos):
            stats[ti, bi] = _stats(run.store, info, (bx0, by0, bx1, by1), int(ts))
    if strips:
        edge = _edge_stats(strips, (len(times), len(loaded.infos)))
        stats[..., :3] += edge[..., :3]
        stats[..., 3] = np.minimum(stats[..., 3], edge[..., 3])
        stats[..., 4] = np.maximum(stats[..., 4], edge[..., 4])
    values = np.array([[_value(reducer, stats[t, k]) for k in range(stats.shape[1])]
                       for t in range(stats.shape[0])])  # fmt: skip
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
