"""Join arrays of different nested-grid levels by integer shifts.

A window is an inclusive pixel range ``(x0, y0, x1, y1)`` at one level, held as an
array ``(..., y1 - y0 + 1, x1 - x0 + 1)`` with row 0 = pixel row ``y1`` (north-up, as
in :mod:`gravitas.kernels.grid`). Going ``d`` levels coarser averages (or takes the
mode of) ``2**d x 2**d`` blocks; going finer repeats each pixel ``2**d`` times.
"""

from __future__ import annotations

from typing import Literal

import numba
import numpy as np
from numpy.typing import NDArray

from gravitas.kernels.datacube.errors import BadParameterError, ShapeMismatchError

__all__ = [
    "CoarsenMethod",
    "Window",
    "align_window",
    "coarsen",
    "crop_pad",
    "refine",
    "shift_window",
    "to_level",
    "window_shape",
]

Window = tuple[int, int, int, int]
"""Inclusive pixel range ``(x0, y0, x1, y1)``; array row 0 is pixel row ``y1``."""
CoarsenMethod = Literal["mean", "mode", "nearest"]
_MAX_SHIFT = 28


def _factor(d: int) -> int:
    if not 0 <= d <= _MAX_SHIFT:
        raise BadParameterError(f"level shift d must be in 0..{_MAX_SHIFT}, got {d}")
    return 1 << d


def _check_2d(arr: NDArray[np.generic], what: str) -> None:
    if arr.ndim < 2:
        raise ShapeMismatchError(f"{what} needs an array (..., y, x), got shape {arr.shape}")


def window_shape(window: Window) -> tuple[int, int]:
    """``(rows, cols)`` of the array holding ``window``."""
    x0, y0, x1, y1 = window
    if x1 < x0 or y1 < y0:
        raise BadParameterError(f"empty window {window}: need x0 <= x1 and y0 <= y1")
    return y1 - y0 + 1, x1 - x0 + 1


def shift_window(window: Window, d: int) -> Window:
    """The same area ``d`` levels coarser (``d > 0``) or ``-d`` levels finer (``d < 0``)."""
    x0, y0, x1, y1 = window
    window_shape(window)
    if d >= 0:
        _factor(d)
        return x0 >> d, y0 >> d, x1 >> d, y1 >> d
    _factor(-d)
    return x0 << -d, y0 << -d, ((x1 + 1) << -d) - 1, ((y1 + 1) << -d) - 1


def align_window(window: Window, d: int) -> Window:
    """Grow ``window`` to whole ``2**d`` blocks, so :func:`coarsen` by ``d`` is exact."""
    f = _factor(d)
    x0, y0, x1, y1 = window
    window_shape(window)
    return x0 // f * f, y0 // f * f, (x1 // f + 1) * f - 1, (y1 // f + 1) * f - 1


def _block_view(arr: NDArray[np.generic], f: int) -> NDArray[np.generic]:
    *lead, h, w = arr.shape
    if h % f or w % f:
        raise ShapeMismatchError(
            f"shape {arr.shape} is not a multiple of the block edge {f} in y and x; "
            "crop_pad to an align_window first"
        )
    return arr.reshape(*lead, h // f, f, w // f, f)


def coarsen(
    arr: NDArray[np.generic],
    d: int,
    *,
    method: CoarsenMethod = "mean",
    nodata: float | None = None,
) -> NDArray[np.generic]:
    """Block-reduce the last two axes by ``2**d``.

    ``mean``: float mean of the valid values (NaN and ``nodata`` excluded; a block
    without any is NaN). ``mode``: most frequent valid value, ties to the smallest (for
    categorical layers; a block without valid values gets ``nodata``, or NaN).
    ``nearest``: the pixel at offset ``(2**d // 2, 2**d // 2)`` of each block.
    """
    a = np.asarray(arr)
    _check_2d(a, "coarsen")
    f = _factor(d)
    if method == "nearest":
        _block_view(a, f)
        return a[..., f // 2 :: f, f // 2 :: f].copy()
    if method == "mean":
        return _coarsen_mean(a, f, nodata)
    if method == "mode":
        return _coarsen_mode(a, f, nodata)
    raise BadParameterError(f"unknown coarsen method {method!r}; use 'mean', 'mode' or 'nearest'")


def _valid(a: NDArray[np.generic], nodata: float | None) -> NDArray[np.bool_]:
    valid = np.isfinite(a) if a.dtype.kind in "fc" else np.ones(a.shape, dtype=bool)
    if nodata is not None and not np.isnan(nodata):
        valid &= a != nodata
    return valid


def _coarsen_mean(a: NDArray[np.generic], f: int, nodata: float | None) -> NDArray[np.floating]:
    out_dtype = a.dtype if a.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    valid = _valid(a, nodata)
    blocks = _block_view(np.where(valid, a, 0).astype(np.float64), f)
    total = blocks.sum(axis=(-3, -1))
    count = _block_view(valid, f).sum(axis=(-3, -1))
    out = np.full(total.shape, np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out.astype(out_dtype)


@numba.njit(cache=True)
def _mode_blocks(codes: NDArray[np.int64]) -> NDArray[np.int64]:  # pragma: no cover - numba
    """Mode of each row of (n, f*f) codes >= 0, ties to the smallest; -1 if none."""
    n, m = codes.shape
    out = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        row = np.sort(codes[i])
        best, best_len, run_len = -1, 0, 0
        for j in range(m):
            c = row[j]
            if c < 0:
                continue
            run_len = run_len + 1 if j > 0 and row[j - 1] == c else 1
            if run_len > best_len:
                best, best_len = c, run_len
        out[i] = best
    return out


def _coarsen_mode(a: NDArray[np.generic], f: int, nodata: float | None) -> NDArray[np.generic]:
    valid = _valid(a, nodata)
    _block_view(a, f)
    values, inverse = np.unique(a[valid], return_inverse=True)
    codes = np.full(a.shape, -1, dtype=np.int64)
    codes[valid] = inverse
    *lead, h, w = a.shape
    blocks = codes.reshape(*lead, h // f, f, w // f, f)
    blocks = np.moveaxis(blocks, -3, -2).reshape(-1, f * f)
    best = _mode_blocks(np.ascontiguousarray(blocks)).reshape(*lead, h // f, w // f)
    hit = best >= 0
    out_dtype = a.dtype
    if nodata is None and not hit.all() and a.dtype.kind != "f":
        out_dtype = np.dtype(np.float64)  # room for the NaN of empty blocks
    out = np.empty(best.shape, dtype=out_dtype)
    out[hit] = values[best[hit]]
    out[~hit] = np.nan if nodata is None else nodata
    return out


def refine(arr: NDArray[np.generic], d: int) -> NDArray[np.generic]:
    """Repeat each pixel of the last two axes ``2**d`` times (``d`` levels finer)."""
    a = np.asarray(arr)
    _check_2d(a, "refine")
    f = _factor(d)
    return np.repeat(np.repeat(a, f, axis=-2), f, axis=-1)


def crop_pad(
    arr: NDArray[np.generic], window: Window, target: Window, *, fill: float = np.nan
) -> NDArray[np.generic]:
    """Re-cut ``arr`` (holding ``window``) to ``target`` at the same level.

    Pixels of ``target`` outside ``window`` get ``fill``; an integer array that needs
    a NaN fill becomes float64.
    """
    a = np.asarray(arr)
    _check_2d(a, "crop_pad")
    if a.shape[-2:] != window_shape(window):
        raise ShapeMismatchError(
            f"array shape {a.shape} does not hold window {window} "
            f"(needs {window_shape(window)} in y, x)"
        )
    rows, cols = window_shape(target)
    dtype = a.dtype
    if np.isnan(fill) and dtype.kind not in "fc":
        dtype = np.dtype(np.float64)
    out = np.full((*a.shape[:-2], rows, cols), fill, dtype=dtype)
    x0, y0 = max(window[0], target[0]), max(window[1], target[1])
    x1, y1 = min(window[2], target[2]), min(window[3], target[3])
    if x1 < x0 or y1 < y0:
        return out
    # rows count from the north edge (y1) of each window
    src = a[..., window[3] - y1 : window[3] - y0 + 1, x0 - window[0] : x1 - window[0] + 1]
    out[..., target[3] - y1 : target[3] - y0 + 1, x0 - target[0] : x1 - target[0] + 1] = src
    return out


def to_level(
    arr: NDArray[np.generic],
    window: Window,
    from_level: int,
    to_level: int,
    *,
    method: CoarsenMethod = "mean",
    nodata: float | None = None,
) -> tuple[NDArray[np.generic], Window]:
    """Move ``arr`` (holding ``window`` at ``from_level``) to ``to_level``.

    Coarser: the window is first grown to whole blocks (padded with NaN, or ``nodata``
    for ``mode``), then coarsened. Finer: pixels are repeated. Returns the new array and
    its window.
    """
    d = from_level - to_level
    if d == 0:
        return np.asarray(arr), window
    if d < 0:
        return refine(arr, -d), shift_window(window, d)
    aligned = align_window(window, d)
    fill = np.nan if nodata is None else nodata
    padded = crop_pad(arr, window, aligned, fill=fill)
    return coarsen(padded, d, method=method, nodata=nodata), shift_window(aligned, d)
