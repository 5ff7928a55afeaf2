"""Reducers over time and over space-time, extremes with where and when, and per-pixel
linear trends (slope per year, intercept, r2, p-value).

Everything builds on the lazy dask arrays of :mod:`gravitas.storage.pixels.lazy`; only
the reductions are computed, chunk by chunk. Per-pixel quantiles and trends over time
run one Numba kernel (:mod:`gravitas.kernels.pixel_stats`) per chunk of whole series
(one stored block, every time step, read in one request). Per-pixel results (``over="time"``) are
rasters ``(band, lat, lon)`` that travel by reference (:mod:`gravitas.agents.featurize_outputs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import dask.array as da
import numpy as np
import xarray as xr
from scipy import stats

from gravitas.kernels.pixel_stats import time_quantiles, time_trend
from gravitas.schemas.errors import RequestError
from gravitas.schemas.events import PixelMatch

SECONDS_PER_YEAR = 365.25 * 86400
QUANTILES = {"q05": 0.05, "q25": 0.25, "q50": 0.5, "q75": 0.75, "q95": 0.95}
SPACE = ("lat", "lon")
TREND_BANDS = ("slope_per_year", "intercept", "r2", "p_value")
MAX_RASTER_PIXELS = 16_000_000
"""A per-pixel answer larger than this many pixels is refused (ask a coarser level)."""


class FeatureLimitError(RequestError):
    """A request whose answer would exceed the service's limits."""


def quantile_names(reducers: Sequence[str], extra: Sequence[float]) -> dict[str, float]:
    """Reducer name -> quantile (the fixed ``q05..q95`` and the request's ``q<value>``)."""
    out = {r: QUANTILES[r] for r in reducers if r in QUANTILES}
    out.update({f"q{q:g}": float(q) for q in extra})
    return out


def reduce_lazy(
    field: xr.DataArray, reducers: Sequence[str], quantiles: dict[str, float], dims: Sequence[str]
) -> dict[str, xr.DataArray]:
    """The plain reducers of ``field`` over ``dims`` (lazy)."""
    dims = tuple(dims)
    out: dict[str, xr.DataArray] = {}
    for r in reducers:
        if r in ("trend", "extremes") or r in QUANTILES:
            continue
        if r == "count":
            out[r] = field.notnull().sum(dims)
        else:
            out[r] = getattr(field, r)(dims, skipna=True)
    if quantiles and dims == ("time",):
        out.update(quantiles_over_time(field, quantiles))
    elif quantiles:
        if len(dims) == 1:
            flat = field.chunk({dims[0]: -1})
            dim = dims[0]
        else:
            flat = field.stack(px=dims).chunk({"px": -1})
            dim = "px"
        for name, q in quantiles.items():
            out[name] = flat.quantile(q, dim=dim, skipna=True).drop_vars("quantile")
    return out


def _time_blocks(field: xr.DataArray) -> da.Array:
    """``field`` ``(time, lat, lon)`` as dask chunks holding the whole series (one per
    stored block when opened with ``time_chunk=-1``: no rechunk then)."""
    f = field.transpose("time", *SPACE)
    data = f.data if isinstance(f.data, da.Array) else da.from_array(f.values)
    return data.rechunk({0: -1}) if len(data.chunks[0]) > 1 else data


def _per_pixel(field: xr.DataArray, data: da.Array, bands: list[str]) -> xr.DataArray:
    return xr.DataArray(
        data, dims=("band", *SPACE), coords={"band": bands, **{d: field[d] for d in SPACE}}
    )


def quantiles_over_time(
    field: xr.DataArray, quantiles: dict[str, float]
) -> dict[str, xr.DataArray]:
    """Per-pixel quantiles over time (lazy; one kernel call per chunk of whole series,
    :func:`gravitas.kernels.pixel_stats.time_quantiles`, equal to ``np.nanquantile``)."""
    data = _time_blocks(field)
    qs = np.array(list(quantiles.values()), np.float64)
    out = da.map_blocks(time_quantiles, data, qs=qs, dtype=np.float64,
                        chunks=((qs.size,), *data.chunks[1:]))  # fmt: skip
    stack = _per_pixel(field, out, list(quantiles))
    return {name: stack.sel(band=name, drop=True) for name in quantiles}


def years_of(times: np.ndarray) -> np.ndarray:
    """Datetimes -> float years since the epoch."""
    return times.astype("datetime64[s]").astype(np.float64) / SECONDS_PER_YEAR


def pixel_trend(field: xr.DataArray) -> xr.DataArray:
    """Per-pixel least squares of value on time (years), NaNs skipped per pixel:
    ``(band, lat, lon)`` with bands slope per year, intercept (at the window's first
    time), r2 and the two-sided p-value of the slope."""
    years = years_of(field["time"].values)
    data = _time_blocks(field)
    out = da.map_blocks(time_trend, data, x=years - years[0], dtype=np.float64,
                        chunks=((4,), *data.chunks[1:]))  # fmt: skip
    return _per_pixel(field, out, [*TREND_BANDS[:3], "n"])


def finish_trend(computed: xr.DataArray) -> xr.DataArray:
    """Add the p-value (t test of the slope, n - 2 degrees of freedom) to a computed trend."""
    r2 = computed.sel(band="r2").values
    n = computed.sel(band="n").values
    with np.errstate(divide="ignore", invalid="ignore"):
        dof = n - 2
        tstat = np.sqrt(r2 * dof / np.clip(1.0 - r2, 1e-300, None))
        p = 2.0 * stats.t.sf(np.abs(tstat), np.where(dof > 0, dof, np.nan))
    p = np.where(dof > 0, p, np.nan)
    out = computed.sel(band=list(TREND_BANDS[:3]))
    pv = xr.DataArray(p[None], dims=("band", *SPACE), coords={"band": ["p_value"]})
    pv = pv.assign_coords(lat=computed["lat"], lon=computed["lon"])
    return xr.concat([out, pv], dim="band", coords="minimal", compat="override")


def extremes_lazy(field: xr.DataArray, k: int) -> tuple[da.Array, da.Array]:
    """Lazy (values, flat indices) of the ``k`` largest finite values of ``field``."""
    raw = field.data.ravel()
    flat = da.where(da.isnan(raw), -np.inf, raw)
    k = min(k, int(flat.size)) or 1
    return da.topk(flat, k), da.argtopk(flat, k)


def extremes(field: xr.DataArray, values: np.ndarray, index: np.ndarray) -> list[PixelMatch]:
    """The top-k pixels as :class:`PixelMatch` (largest first; -inf = nodata dropped)."""
    order = np.argsort(-values, kind="stable")
    t_i, y_i, x_i = np.unravel_index(index[order], field.shape)
    times, lat, lon = field["time"].values, field["lat"].values, field["lon"].values
    out = []
    for v, ti, yi, xi in zip(values[order], t_i, y_i, x_i, strict=True):
        if not np.isfinite(v):
            continue
        ts = int(times[ti].astype("datetime64[s]").astype(np.int64))
        out.append(
            PixelMatch(
                lon=float(lon[xi]),
                lat=float(lat[yi]),
                time=datetime.fromtimestamp(ts, UTC),
                value=float(v),
            )
        )
    return out


def check_raster(field: xr.DataArray) -> None:
    """Refuse a per-pixel answer larger than :data:`MAX_RASTER_PIXELS`."""
    n = field.sizes["lat"] * field.sizes["lon"]
    if n > MAX_RASTER_PIXELS:
        raise FeatureLimitError(
            f"a per-pixel answer of {field.sizes['lat']} x {field.sizes['lon']} = {n} pixels "
            f"exceeds the limit of {MAX_RASTER_PIXELS}; use a coarser level or a smaller bbox"
        )
