"""Gap filling, temporal aggregation and per-band normalisation statistics.

Cubes are float arrays with time on axis 0 and space on the last two axes,
``(t, y, x)`` or ``(t, band, y, x)``. Any non-finite value (NaN, inf) is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from gravitas.kernels.datacube.errors import BadParameterError, ShapeMismatchError

__all__ = [
    "AggregateMethod",
    "NormMethod",
    "NormStats",
    "aggregate_time",
    "apply_normalisation",
    "band_statistics",
    "fill_spatial",
    "fill_temporal",
    "gap_fill",
]

AggregateMethod = Literal["mean", "max", "min", "sum", "nearest"]
NormMethod = Literal["zscore", "minmax", "percentile"]
_AGG_CODES = {"mean": 0, "max": 1, "min": 2, "sum": 3, "nearest": 4}
FloatArray = NDArray[np.floating[Any]]


def _float_cube(cube: ArrayLike, min_ndim: int, what: str) -> FloatArray:
    a = np.asarray(cube)
    if a.dtype.kind not in "fiu":
        raise BadParameterError(f"{what} needs a numeric array, got dtype {a.dtype}")
    if a.ndim < min_ndim:
        raise ShapeMismatchError(
            f"{what} needs an array of at least {min_ndim} dims (t, ..., y, x), got shape {a.shape}"
        )
    return a if a.dtype.kind == "f" else a.astype(np.float64)


def _times(times: ArrayLike | None, n: int, what: str) -> NDArray[np.float64]:
    if times is None:
        return np.arange(n, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64).ravel()
    if t.size != n:
        raise ShapeMismatchError(f"{what}: {t.size} times for {n} time steps")
    if not np.all(np.isfinite(t)):
        raise BadParameterError(f"{what}: times must be finite seconds, got {t}")
    return t


@numba.njit(cache=True)
def _interp_columns(
    data: NDArray[np.float64], t: NDArray[np.float64]
) -> NDArray[np.float64]:  # pragma: no cover - numba
    """Copy of (t, n) ``data`` with inner gaps of each column interpolated linearly in ``t``."""
    nt, n = data.shape
    out = data.copy()
    for j in range(n):
        last = -1
        for k in range(nt):
            if not np.isfinite(data[k, j]):
                continue
            if last >= 0 and k - last > 1:
                t0, t1 = t[last], t[k]
                v0, v1 = data[last, j], data[k, j]
                for i in range(last + 1, k):
                    w = (t[i] - t0) / (t1 - t0) if t1 != t0 else 0.0
                    out[i, j] = v0 + w * (v1 - v0)
            last = k
    return out


def fill_temporal(
    cube: ArrayLike, times: ArrayLike | None = None
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Interpolate each pixel linearly in time between its valid observations.

    ``times`` (seconds, increasing) spaces the steps; default: evenly. Leading and
    trailing gaps stay NaN (for :func:`fill_spatial`). Returns the filled cube (same
    dtype) and the mask of pixels that were missing and got a value.
    """
    a = _float_cube(cube, 1, "fill_temporal")
    t = _times(times, a.shape[0], "fill_temporal")
    if np.any(np.diff(t) <= 0):
        raise BadParameterError("fill_temporal: times must be strictly increasing")
    flat = np.ascontiguousarray(a.reshape(a.shape[0], -1), dtype=np.float64)
    out = _interp_columns(flat, t).reshape(a.shape).astype(a.dtype, copy=False)
    return out, ~np.isfinite(a) & np.isfinite(out)


def fill_spatial(cube: ArrayLike) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Give every missing pixel the value of its nearest valid pixel in the same slice.

    Works on each 2-D slice ``(y, x)`` of ``(..., y, x)``; ties of distance are broken
    by scipy's Euclidean distance transform. A slice without any valid pixel stays NaN.
    """
    a = _float_cube(cube, 2, "fill_spatial")
    out = a.copy()
    flat = out.reshape(-1, *a.shape[-2:])
    for s in flat:
        missing = ~np.isfinite(s)
        if not missing.any() or missing.all():
            continue
        idx = ndimage.distance_transform_edt(missing, return_distances=False, return_indices=True)
        s[...] = s[idx[0], idx[1]]
    return out, ~np.isfinite(a) & np.isfinite(out)


def gap_fill(
    cube: ArrayLike,
    times: ArrayLike | None = None,
    *,
    temporal: bool = True,
    spatial: bool = True,
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Temporal interpolation, then spatial nearest fill of what remains.

    ``cube`` is ``(t, ..., y, x)``. Valid pixels are never changed. Returns the filled
    cube and the boolean mask of pixels that were missing and got a value.
    """
    a = _float_cube(cube, 3 if temporal else 2, "gap_fill")
    out = a
    if temporal:
        out, _ = fill_temporal(out, times)
    if spatial:
        out, _ = fill_spatial(out)
    if out is a:
        out = a.copy()
    return out, ~np.isfinite(a) & np.isfinite(out)


@numba.njit(cache=True)
def _aggregate(
    data: NDArray[np.float64],
    inv: NDArray[np.int64],
    nbins: int,
    method: int,
    t: NDArray[np.float64],
    centers: NDArray[np.float64],
) -> NDArray[np.float64]:  # pragma: no cover - numba
    nt, n = data.shape
    out = np.full((nbins, n), np.nan)
    count = np.zeros((nbins, n), dtype=np.int64)
    best = np.full((nbins, n), np.inf)
    for k in range(nt):
        b = inv[k]
        for j in range(n):
            v = data[k, j]
            if not np.isfinite(v):
                continue
            c = count[b, j]
            if method == 4:
                dist = abs(t[k] - centers[b])
                if dist < best[b, j]:
                    best[b, j] = dist
                    out[b, j] = v
            elif c == 0:
                out[b, j] = v
            elif method == 0 or method == 3:
                out[b, j] += v
            elif method == 1:
                out[b, j] = max(out[b, j], v)
            else:
                out[b, j] = min(out[b, j], v)
            count[b, j] = c + 1
    if method == 0:
        for b in range(nbins):
            for j in range(n):
                if count[b, j] > 0:
                    out[b, j] /= count[b, j]
    return out


def aggregate_time(
    cube: ArrayLike,
    bins: ArrayLike,
    method: AggregateMethod = "mean",
    *,
    times: ArrayLike | None = None,
    centers: ArrayLike | None = None,
) -> tuple[FloatArray, NDArray[np.int64]]:
    """Reduce axis 0 of ``cube`` over time bins (one integer bin id per step).

    ``mean max min sum`` use the valid values of each bin (none -> NaN, also for
    ``sum``). ``nearest`` takes the valid value whose time is nearest the bin centre
    (``centers``, one per bin in sorted id order; default the mean of the bin's
    ``times``; ``times`` default to the step index). Returns ``(n_bins, ...)`` and the
    sorted bin ids.
    """
    a = _float_cube(cube, 1, "aggregate_time")
    b = np.asarray(bins).ravel()
    if b.dtype.kind not in "iu":
        raise BadParameterError(f"bins must be integer bin ids, got dtype {b.dtype}")
    if b.size != a.shape[0]:
        raise ShapeMismatchError(f"{b.size} bin ids for {a.shape[0]} time steps")
    if method not in _AGG_CODES:
        raise BadParameterError(f"unknown aggregation {method!r}; use one of {list(_AGG_CODES)}")
    ids, inv = np.unique(b, return_inverse=True)
    t = _times(times, a.shape[0], "aggregate_time")
    if centers is None:
        c = np.bincount(inv, weights=t, minlength=ids.size) / np.bincount(inv, minlength=ids.size)
    else:
        c = _times(centers, ids.size, "aggregate_time centers")
    flat = np.ascontiguousarray(a.reshape(a.shape[0], -1), dtype=np.float64)
    out = _aggregate(flat, inv.astype(np.int64).ravel(), ids.size, _AGG_CODES[method], t, c)
    return out.reshape(ids.size, *a.shape[1:]).astype(a.dtype, copy=False), ids.astype(np.int64)


@dataclass(frozen=True)
class NormStats:
    """Per-band statistics over valid pixels, recorded with the datacube (not applied)."""

    mean: NDArray[np.float64]
    std: NDArray[np.float64]
    """Population standard deviation (ddof = 0)."""
    min: NDArray[np.float64]
    max: NDArray[np.float64]
    p2: NDArray[np.float64]
    p98: NDArray[np.float64]
    count: NDArray[np.int64]
    """Valid pixels per band; a band with none has NaN statistics."""

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready lists per statistic (NaN stays NaN; orjson writes it as null)."""
        return {k: [float(v) for v in getattr(self, k)] for k in self.__dataclass_fields__}


def _band_axis(ndim: int, band_axis: int) -> int:
    if not -ndim <= band_axis < ndim:
        raise ShapeMismatchError(f"band_axis {band_axis} is outside an array of {ndim} dims")
    return band_axis % ndim


def band_statistics(cube: ArrayLike, *, band_axis: int = -3) -> NormStats:
    """Mean, std, min, max, 2nd and 98th percentile of each band over its valid pixels.

    ``band_axis`` defaults to -3, the band axis of both ``(band, y, x)`` and
    ``(t, band, y, x)``.
    """
    a = _float_cube(cube, 1, "band_statistics")
    ax = _band_axis(a.ndim, band_axis)
    bands = np.moveaxis(a, ax, 0).reshape(a.shape[ax], -1)
    stats = np.full((6, bands.shape[0]), np.nan)
    count = np.zeros(bands.shape[0], dtype=np.int64)
    for i, band in enumerate(bands):
        v = band[np.isfinite(band)].astype(np.float64)
        count[i] = v.size
        if v.size:
            p2, p98 = np.percentile(v, [2.0, 98.0])
            stats[:, i] = (v.mean(), v.std(), v.min(), v.max(), p2, p98)
    mean, std, lo, hi, p2, p98 = stats
    return NormStats(mean=mean, std=std, min=lo, max=hi, p2=p2, p98=p98, count=count)


def apply_normalisation(
    cube: ArrayLike,
    stats: NormStats,
    method: NormMethod = "zscore",
    *,
    band_axis: int = -3,
    clip: bool = False,
) -> FloatArray:
    """Normalise each band with recorded :class:`NormStats`; NaN stays NaN.

    ``zscore``: ``(x - mean) / std``; ``minmax``: ``(x - min) / (max - min)``;
    ``percentile``: ``(x - p2) / (p98 - p2)``. A zero spread divides by 1. ``clip``
    limits minmax / percentile results to [0, 1].
    """
    a = _float_cube(cube, 1, "apply_normalisation")
    ax = _band_axis(a.ndim, band_axis)
    if a.shape[ax] != stats.mean.size:
        raise ShapeMismatchError(
            f"cube has {a.shape[ax]} bands on axis {band_axis} but stats hold {stats.mean.size}"
        )
    if method == "zscore":
        lo, spread = stats.mean, stats.std
    elif method == "minmax":
        lo, spread = stats.min, stats.max - stats.min
    elif method == "percentile":
        lo, spread = stats.p2, stats.p98 - stats.p2
    else:
        raise BadParameterError(
            f"unknown normalisation {method!r}; use 'zscore', 'minmax' or 'percentile'"
        )
    shape = [1] * a.ndim
    shape[ax] = -1
    spread = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)
    out = (a - lo.reshape(shape)) / spread.reshape(shape)
    if clip and method != "zscore":
        out = np.clip(out, 0.0, 1.0)
    return out.astype(a.dtype, copy=False)
