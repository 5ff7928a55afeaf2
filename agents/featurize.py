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
from datetime import UTC, datetime
from typing import Any

import dask
import numpy as np
import xarray as xr

from gravitas.kernels.expression import ExpressionError, compile_expression
from gravitas.schemas.errors import RequestError
from gravitas.schemas.events import FeatureResult, Featurize
from gravitas.storage.blocks import BlockStore
from gravitas.storage.pixels.layers import LayerRegistry
from gravitas.storage.pixels.lazy import open_layer

SECONDS_PER_YEAR = 365.25 * 86400
QUANTILES = {"q05": 0.05, "q25": 0.25, "q50": 0.5, "q75": 0.75, "q95": 0.95}


class FeaturizeError(RequestError):
    """A featurize request that cannot be computed as asked (no data, bad variables)."""


def open_variables(
    event: Featurize, store: BlockStore, registry: LayerRegistry
) -> dict[str, xr.DataArray]:
    """The request's variables as lazy arrays on one grid (the coarsest native level of
    its layers unless the request names a level), aligned on their common times."""
    infos = {var: registry.get(layer) for var, layer in event.layers.items()}
    level = event.level or min(i.native_level for i in infos.values())
    arrays = {
        var: open_layer(
            store, registry, layer, event.bbox, event.time.start, event.time.end, level
        ).astype(np.float64)
        for var, layer in event.layers.items()
    }
    if len(arrays) > 1:
        aligned = xr.align(*arrays.values(), join="inner")
        arrays = dict(zip(arrays, aligned, strict=True))
    return arrays


def _reduce(field: xr.DataArray, reducers: list[str]) -> dict[str, xr.DataArray]:
    space = ("lat", "lon")
    out: dict[str, xr.DataArray] = {}
    for r in reducers:
        if r == "trend":
            continue
        if r == "count":
            out[r] = field.notnull().sum(space)
        elif r in QUANTILES:
            flat = field.stack(px=space).chunk({"px": -1})
            out[r] = flat.quantile(QUANTILES[r], dim="px", skipna=True).drop_vars("quantile")
        else:
            out[r] = getattr(field, r)(space, skipna=True)
    if "trend" in reducers:
        out["_mean_for_trend"] = field.mean(space, skipna=True)
    return out


def _trend(times: np.ndarray, means: np.ndarray) -> float:
    ok = np.isfinite(means)
    if ok.sum() < 2:
        return float("nan")
    years = times[ok].astype("datetime64[s]").astype(np.float64) / SECONDS_PER_YEAR
    slope = np.polyfit(years - years.mean(), means[ok], 1)[0]
    return float(slope)


def compute_features(
    event: Featurize, store: BlockStore, registry: LayerRegistry, node_id: str
) -> FeatureResult:
    """Evaluate the request; raises :class:`FeaturizeError` / :class:`ExpressionError`."""
    expr = compile_expression(event.expression, set(event.layers))
    arrays = open_variables(event, store, registry)
    if not all(a.sizes["time"] for a in arrays.values()):
        names = [f"{v} ({event.layers[v]})" for v, a in arrays.items() if not a.sizes["time"]]
        raise FeaturizeError(
            f"no data for {', '.join(names)} in {event.time.start.isoformat()}.."
            f"{event.time.end.isoformat()}; widen the time window"
        )
    field = expr.evaluate(arrays)
    if not isinstance(field, xr.DataArray):  # an expression without variables
        raise ExpressionError(f"expression {event.expression!r} reads no variable")
    lazy = _reduce(field.astype(np.float64), list(event.reducers))
    with warnings.catch_warnings(), dask.config.set(scheduler="threads"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps stay NaN
        (computed,) = dask.compute(lazy)
    times = field["time"].values
    values: dict[str, dict[str, float]] = {}
    for i, t in enumerate(times):
        key = datetime.fromtimestamp(int(t.astype("datetime64[s]").astype(int)), UTC).isoformat()
        values[key] = {r: _number(computed[r].values[i]) for r in event.reducers if r != "trend"}
    if "trend" in event.reducers:
        values["all"] = {"trend": _trend(times, np.asarray(computed["_mean_for_trend"].values))}
    return FeatureResult(request_id=event.request_id, values=values, served_by=node_id)


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
