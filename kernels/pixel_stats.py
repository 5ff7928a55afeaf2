"""Numba kernels for the reductions of the featurize service and the pyramid path.

Each runs in ONE pass over a block-aligned chunk read straight from the store and
releases the GIL (``nogil``), so dask's threads run chunks side by side:

- :func:`masked_stats`: ``count, sum, sumsq, min, max`` per time step of a
  ``(time, y, x)`` chunk under an optional ``(y, x)`` mask (the pixel part of
  :mod:`gravitas.storage.pixels.region_stats`); float64 accumulators;
- :func:`time_quantiles`: per-pixel quantiles over time, NaN skipped, numpy's default
  ``linear`` method (``np.nanquantile``) value for value (two order statistics by
  quickselect per quantile, no sort);
- :func:`time_trend`: per-pixel least squares of value on time (centred two-pass sums,
  float64): slope, intercept at ``x = 0``, r2 and the number of valid steps.

Why hand-written: the same reductions through xarray + dask cost several full passes
with float64 temporaries per chunk (the trend five separate reductions, the quantile a
NaN-aware sort of a copy per pixel); bench/featurize.py and bench/README.md show the
difference on 10^8 pixels. No fast math: NaN checks must stay valid.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["masked_stats", "time_quantiles", "time_trend"]


@numba.njit(cache=True, nogil=True)
def _stats(
    arr: np.ndarray, mask: np.ndarray, nodata: float, use_nodata: bool, out: np.ndarray
) -> None:
    nt, ny, nx = arr.shape
    for t in range(nt):
        n, s, sq = 0.0, 0.0, 0.0
        lo, hi = np.inf, -np.inf
        for j in range(ny):
            for i in range(nx):
                if not mask[j, i]:
                    continue
                v = np.float64(arr[t, j, i])
                if v != v or (use_nodata and v == nodata):
                    continue
                n += 1.0
                s += v
                sq += v * v
                lo = min(lo, v)
                hi = max(hi, v)
        out[t, 0], out[t, 1], out[t, 2], out[t, 3], out[t, 4] = n, s, sq, lo, hi


def masked_stats(
    arr: np.ndarray, mask: np.ndarray | None = None, nodata: float | None = None
) -> np.ndarray:
    """``(time, 5)`` ``count, sum, sumsq, min, max`` of ``arr`` ``(time, y, x)`` over the
    pixels of ``mask`` ``(y, x)`` (None: all) that are not NaN and not ``nodata``."""
    if arr.ndim != 3:
        raise ValueError(f"masked_stats wants a (time, y, x) array, got shape {arr.shape}")
    if mask is None:
        mask = np.ones(arr.shape[1:], np.bool_)
    elif mask.shape != arr.shape[1:]:
        raise ValueError(f"mask of shape {mask.shape} does not fit {arr.shape[1:]}")
    out = np.empty((arr.shape[0], 5), np.float64)
    value = 0.0 if nodata is None or np.isnan(nodata) else float(nodata)
    use = nodata is not None and not np.isnan(nodata)
    _stats(np.ascontiguousarray(arr), np.ascontiguousarray(mask, np.bool_), value, use, out)
    return out


@numba.njit(cache=True, nogil=True)
def _select(a: np.ndarray, n: int, k: int) -> float:
    """The ``k``-th smallest of ``a[:n]`` (Hoare's quickselect, median-of-three pivots;
    reorders ``a[:n]`` so that ``a[k + 1 : n]`` holds no smaller value)."""
    lo, hi = 0, n - 1
    while hi > lo:
        mid = (lo + hi) // 2
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return a[k]


@numba.njit(cache=True, nogil=True)
def _quantiles(arr: np.ndarray, qs: np.ndarray, out: np.ndarray) -> None:
    nt, ny, nx = arr.shape
    buf = np.empty(nt, np.float64)
    row = np.empty((nx, nt), np.float64)
    for j in range(ny):
        for t in range(nt):  # one image row, series contiguous (reads along x)
            for i in range(nx):
                row[i, t] = arr[t, j, i]
        for i in range(nx):
            n = 0
            for t in range(nt):  # the valid values
                v = row[i, t]
                if v == v:
                    buf[n] = v
                    n += 1
            if n == 0:
                for k in range(qs.size):
                    out[k, j, i] = np.nan
                continue
            for k in range(qs.size):
                q = qs[k]
                h = n * q + (1.0 - q) - 1.0  # numpy's virtual index of 'linear'
                h = min(max(h, 0.0), n - 1.0)
                lo = int(np.floor(h))
                g = h - lo
                a = _select(buf, n, lo)  # two order statistics, no full sort
                b = a
                for m in range(lo + 1, n):
                    b = buf[m] if m == lo + 1 or buf[m] < b else b
                d = b - a
                out[k, j, i] = b - d * (1.0 - g) if g >= 0.5 else a + d * g


def time_quantiles(arr: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """``(len(qs), y, x)`` float64: per-pixel quantiles of ``arr`` ``(time, y, x)`` over
    time, NaN skipped (all-NaN pixels NaN), as ``np.nanquantile(arr, qs, axis=0)``."""
    if arr.ndim != 3:
        raise ValueError(f"time_quantiles wants a (time, y, x) array, got shape {arr.shape}")
    q = np.asarray(qs, np.float64).reshape(-1)
    if q.size and (not np.all(np.isfinite(q)) or q.min() < 0 or q.max() > 1):
        raise ValueError(f"quantiles must be in [0, 1], got {q.tolist()}")
    out = np.empty((q.size, arr.shape[1], arr.shape[2]), np.float64)
    _quantiles(np.ascontiguousarray(arr), q, out)
    return out


@numba.njit(cache=True, nogil=True)
def _trend(arr: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    nt, ny, nx = arr.shape
    for j in range(ny):
        for i in range(nx):
            n, sx, sy = 0.0, 0.0, 0.0
            for t in range(nt):
                v = np.float64(arr[t, j, i])
                if v == v:
                    n += 1.0
                    sx += x[t]
                    sy += v
            if n == 0:
                out[0, j, i] = out[1, j, i] = out[2, j, i] = np.nan
                out[3, j, i] = 0.0
                continue
            mx, my = sx / n, sy / n
            cxx, cxy, cyy = 0.0, 0.0, 0.0
            for t in range(nt):
                v = np.float64(arr[t, j, i])
                if v == v:
                    dx, dy = x[t] - mx, v - my
                    cxx += dx * dx
                    cxy += dx * dy
                    cyy += dy * dy
            slope = cxy / cxx if cxx > 0 else np.nan
            out[0, j, i] = slope
            out[1, j, i] = my - slope * mx
            out[2, j, i] = cxy * cxy / (cxx * cyy) if cxx > 0 and cyy > 0 else np.nan
            out[3, j, i] = n


def time_trend(arr: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``(4, y, x)`` float64: per-pixel least squares of ``arr`` ``(time, y, x)`` on ``x``
    ``(time,)``, NaN skipped: slope, intercept (at ``x = 0``), r2, valid count (slope,
    intercept and r2 NaN where fewer than two distinct times or a constant series)."""
    if arr.ndim != 3 or np.shape(x) != arr.shape[:1]:
        raise ValueError(f"time_trend wants (time, y, x) and (time,), got {arr.shape}, "
                         f"{np.shape(x)}")  # fmt: skip
    out = np.empty((4, arr.shape[1], arr.shape[2]), np.float64)
    _trend(np.ascontiguousarray(arr), np.ascontiguousarray(x, np.float64), out)
    return out
