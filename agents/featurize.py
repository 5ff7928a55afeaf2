"""Featurization next to the data: user math over layers, reduced to a few numbers.

A :class:`Featurize` request names variables (``{"rain": "stageiv"}``), an expression over
them (``"where(rain > 50, 1, 0)"``, compiled by :mod:`gravitas.kernels.expression`, never
evaluated as Python), a bbox, a time window and reducers. The layers open as lazy dask
arrays (:mod:`gravitas.storage.pixels.lazy`), the expression builds on them, and only the
reductions are computed: per time step over space (``min max mean std count sum`` and
the quantiles ``q05 .. q95``), and ``trend``, the least-squares slope of the spatial mean
over time (per year). Only the numbers travel back in the :class:`FeatureResult`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import dask
import numpy as np
import xarray as xr

from gravitas.agents.featurize_reduce import (
    QUANTILES,
    SPACE,
    check_raster,
    extremes,
    extremes_lazy,
    finish_trend,
    pixel_trend,
    quantile_names,
    reduce_lazy,
    years_of,
)
from gravitas.kernels.expression import ExpressionError, compile_expression
from gravitas.schemas.errors import RequestError
from gravitas.schemas.events import FeatureResult, Featurize
from gravitas.storage.blocks import BlockStore
from gravitas.storage.pixels.layers import LayerRegistry
from gravitas.storage.pixels.lazy import open_layer


class FeaturizeError(RequestError):
    """A featurize request that cannot be computed as asked (no data, bad variables)."""


def open_variables(
    event: Featurize, store: BlockStore, registry: LayerRegistry
) -> dict[str, xr.DataArray]:
    """The request's variables as lazy arrays on one grid (the coarsest native level of
    its layers unless the request names a level), aligned on their common times.
    Reductions over time get one chunk per stored block holding the whole series."""
    infos = {var: registry.get(layer) for var, layer in event.layers.items()}
    level = event.level or min(i.native_level for i in infos.values())
    tchunk = -1 if event.over == "time" else 1
    arrays = {
        var: open_layer(
            store, registry, layer, event.bbox, event.time.start, event.time.end, level, tchunk
        )
        for var, layer in event.layers.items()
    }
    if not kernels_only(event):  # the kernels read the stored dtype, in float64 per value
        arrays = {var: a.astype(np.float64) for var, a in arrays.items()}
    if len(arrays) > 1:
        aligned = xr.align(*arrays.values(), join="inner")
        arrays = dict(zip(arrays, aligned, strict=True))
    return arrays


@dataclass
class Computed:
    """A featurize answer before its large parts are stored: the result that travels and
    the per-pixel rasters ``(band, lat, lon)`` / files that go to the object store."""

    result: FeatureResult
    rasters: dict[str, xr.DataArray] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)


def _iso(t: np.datetime64) -> str:
    return datetime.fromtimestamp(int(t.astype("datetime64[s]").astype(int)), UTC).isoformat()


def _trend(times: np.ndarray, means: np.ndarray) -> float:
    ok = np.isfinite(means)
    if ok.sum() < 2:
        return float("nan")
    years = years_of(times[ok])
    slope = np.polyfit(years - years.mean(), means[ok], 1)[0]
    return float(slope)


def kernels_only(event: Featurize) -> bool:
    """A request that is one variable reduced over time by the kernels only (quantiles,
    trend): no float64 copy of the pixels is made, the kernels convert each value."""
    plain = set(event.reducers) <= {"trend", *QUANTILES}
    single = event.expression.strip() in event.layers
    return event.model is None and event.over == "time" and plain and single


def build_field(
    event: Featurize, store: BlockStore, registry: LayerRegistry
) -> tuple[xr.DataArray, dict[str, xr.DataArray]]:
    """The request's expression over its (lazy) variables, and the variables."""
    expr = compile_expression(event.expression, set(event.layers))
    arrays = open_variables(event, store, registry)
    if not all(a.sizes["time"] for a in arrays.values()):
        names = [f"{v} ({event.layers[v]})" for v, a in arrays.items() if not a.sizes["time"]]
        raise FeaturizeError(
            f"no data for {', '.join(names)} in {event.time.start.isoformat()}.."
            f"{event.time.end.isoformat()}; widen the time window"
        )
    result = expr.evaluate(arrays)
    if not isinstance(result, xr.DataArray):  # an expression without variables
        raise ExpressionError(f"expression {event.expression!r} reads no variable")
    if result.dtype != np.float64 and not kernels_only(event):
        result = result.astype(np.float64)
    return result, arrays


def featurize(
    event: Featurize,
    store: BlockStore,
    registry: LayerRegistry,
    node_id: str,
    vectors_dir: Path | None = None,
) -> Computed:
    """Evaluate the request; raises :class:`FeaturizeError` / :class:`ExpressionError` /
    :class:`FeatureLimitError`."""
    if event.model is not None:
        from gravitas.agents.featurize_models import train_model

        trained: Computed = cast(Any, train_model(event, store, registry, node_id, vectors_dir))
        return trained
    fld, _ = build_field(event, store, registry)
    reducers = list(event.reducers)
    qs = quantile_names(reducers, event.quantiles)
    over = event.over
    dims = {"space": SPACE, "time": ("time",), "space-time": ("time", *SPACE)}[over]
    lazy: dict[str, Any] = dict(reduce_lazy(fld, reducers, qs, dims))
    if "trend" in reducers:
        if over == "time":
            check_raster(fld)
            lazy["_pixel_trend"] = pixel_trend(fld)
        else:
            lazy["_mean_for_trend"] = fld.mean(SPACE, skipna=True)
    if "extremes" in reducers:
        lazy["_top"] = extremes_lazy(fld, event.top_k)
    if over == "time":
        check_raster(fld)
    with warnings.catch_warnings(), dask.config.set(scheduler="threads"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps stay NaN
        (computed,) = dask.compute(lazy)
    result = FeatureResult(request_id=event.request_id, served_by=node_id)
    names: list[str] = [r for r in reducers if r not in ("trend", "extremes")]
    names = [r for r in names if r not in QUANTILES]
    names += list(qs)
    times = fld["time"].values
    out = Computed(result)
    if over == "space":
        for i, t in enumerate(times):
            result.values[_iso(t)] = {r: _number(computed[r].values[i]) for r in names}
    elif over == "space-time":
        result.values["all"] = {r: _number(computed[r].values) for r in names}
    elif names:
        grids = [computed[r].transpose(*SPACE).astype(np.float64) for r in names]
        stack = xr.concat(grids, dim="band", coords="minimal", compat="override")
        out.rasters["reduced"] = stack.assign_coords(band=names)
    if "trend" in reducers:
        if over == "time":
            out.rasters["trend"] = finish_trend(computed["_pixel_trend"])
        else:
            means = np.asarray(computed["_mean_for_trend"].values)
            result.values.setdefault("all", {})["trend"] = _trend(times, means)
    if "extremes" in reducers:
        top_v, top_i = computed["_top"]
        result.extremes.extend(extremes(fld, np.asarray(top_v), np.asarray(top_i)))
    return out


def compute_features(
    event: Featurize, store: BlockStore, registry: LayerRegistry, node_id: str
) -> FeatureResult:
    """The small answer of a request (its rasters, if any, are not stored)."""
    return featurize(event, store, registry, node_id).result


def _number(v: Any) -> float:
    f = float(v)
    return f if np.isfinite(f) else float("nan")


def failed(event: Featurize, node_id: str, exc: Exception) -> FeatureResult:
    """The answer to a request that could not be computed, naming the cause."""
    return FeatureResult(
        request_id=event.request_id,
        status="failed",
        error=f"{type(exc).__name__}: {exc}",
        served_by=node_id,
    )


def layers_of(event: Featurize) -> Mapping[str, str]:
    """Variable -> layer of a request (for routing to the node that holds them)."""
    return event.layers
