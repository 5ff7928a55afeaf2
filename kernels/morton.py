"""Morton (Z-order) codes of block coordinates, and their contiguous ranges over a box.

The code interleaves the bits of ``x`` (even bits) and ``y`` (odd bits), so a block's
parent one level coarser is ``code >> 2`` and its four children are
``(code << 2) | q`` with ``q = (y & 1) << 1 | (x & 1)``. Coordinates are limited to
32 bits each (level 29 needs 21 bits for block and 29 bits for pixel coordinates).
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from gravitas.schemas.grid import GridError

__all__ = [
    "MAX_COORD",
    "morton_children",
    "morton_code",
    "morton_decode",
    "morton_encode",
    "morton_parent",
    "morton_ranges",
    "morton_xy",
]

MAX_COORD = (1 << 32) - 1
"""Largest coordinate a 64-bit Morton code can hold."""

_M = [np.uint64(v) for v in (
    0x00000000FFFFFFFF, 0x0000FFFF0000FFFF, 0x00FF00FF00FF00FF,
    0x0F0F0F0F0F0F0F0F, 0x3333333333333333, 0x5555555555555555,
)]  # fmt: skip
_S = [np.uint64(s) for s in (16, 8, 4, 2, 1)]


def _spread(v: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Insert a zero bit above every bit of the low 32 bits of ``v``."""
    v = v & _M[0]
    for shift, mask in zip(_S, _M[1:], strict=True):
        v = (v | (v << shift)) & mask
    return v


def _compact(v: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Inverse of :func:`_spread`: gather the even bits of ``v`` into the low 32 bits."""
    v = v & _M[5]
    for shift, mask in zip(_S[::-1], _M[4::-1], strict=True):
        v = (v | (v >> shift)) & mask
    return v


def _as_coords(a: ArrayLike, name: str) -> NDArray[np.uint64]:
    arr = np.asarray(a)
    if arr.dtype.kind not in "iu":
        raise GridError(f"{name} must be integers, got dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > MAX_COORD):
        raise GridError(
            f"{name} must be in 0..{MAX_COORD}, got values in {int(arr.min())}..{int(arr.max())}"
        )
    return arr.astype(np.uint64)


def morton_encode(x: ArrayLike, y: ArrayLike) -> NDArray[np.uint64]:
    """Vectorised Morton codes of integer coordinates ``x``, ``y`` (broadcast)."""
    return _spread(_as_coords(x, "x")) | (_spread(_as_coords(y, "y")) << np.uint64(1))


def morton_decode(code: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Vectorised inverse of :func:`morton_encode`: ``(x, y)`` as int64 arrays."""
    c = np.asarray(code)
    if c.dtype.kind not in "iu":
        raise GridError(f"morton codes must be integers, got dtype {c.dtype}")
    if c.dtype.kind == "i" and c.size and int(c.min()) < 0:
        raise GridError(f"morton codes must be >= 0, got {int(c.min())}")
    c = c.astype(np.uint64)
    x = _compact(c).astype(np.int64)
    y = _compact(c >> np.uint64(1)).astype(np.int64)
    return x, y


def morton_code(x: int, y: int) -> int:
    """Morton code of one ``(x, y)`` as a Python int."""
    return int(morton_encode(int(x), int(y)))


def morton_xy(code: int) -> tuple[int, int]:
    """``(x, y)`` of one Morton code, as Python ints."""
    x, y = morton_decode(int(code))
    return int(x), int(y)


def morton_parent(code: int, levels: int = 1) -> int:
    """Code of the ancestor ``levels`` levels coarser: ``code >> (2 * levels)``."""
    if levels < 0:
        raise GridError(f"levels must be >= 0, got {levels}")
    return int(code) >> (2 * levels)


def morton_children(code: int) -> list[int]:
    """The four child codes one level finer, in ascending (Z) order."""
    base = int(code) << 2
    return [base | q for q in range(4)]


@numba.njit(cache=True)
def _ranges_kernel(
    bx0: int, by0: int, bx1: int, by1: int, nbits: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Quadtree descent: emit the code ranges of every maximal square inside the box."""
    cap = 1024
    lo = np.empty(cap, np.int64)
    hi = np.empty(cap, np.int64)
    n = 0
    # stack of (code prefix, square x, square y, log2 size); depth <= nbits, 4 per level
    stack = np.empty((4 * nbits + 8, 4), np.int64)
    stack[0, 0] = 0
    stack[0, 1] = 0
    stack[0, 2] = 0
    stack[0, 3] = nbits
    top = 1
    while top > 0:
        top -= 1
        prefix = stack[top, 0]
        sx = stack[top, 1]
        sy = stack[top, 2]
        k = stack[top, 3]
        x0 = sx << k
        y0 = sy << k
        x1 = x0 + (1 << k) - 1
        y1 = y0 + (1 << k) - 1
        if x0 > bx1 or x1 < bx0 or y0 > by1 or y1 < by0:
            continue
        if x0 >= bx0 and x1 <= bx1 and y0 >= by0 and y1 <= by1:
            a = prefix << (2 * k)
            b = ((prefix + 1) << (2 * k)) - 1
            if n > 0 and hi[n - 1] + 1 == a:
                hi[n - 1] = b
            else:
                if n == cap:
                    cap *= 2
                    lo2 = np.empty(cap, np.int64)
                    hi2 = np.empty(cap, np.int64)
                    lo2[:n] = lo[:n]
                    hi2[:n] = hi[:n]
                    lo = lo2
                    hi = hi2
                lo[n] = a
                hi[n] = b
                n += 1
            continue
        # push children in reverse Z order so quadrant 0 is popped (and emitted) first
        for q in range(3, -1, -1):
            stack[top, 0] = (prefix << 2) | q
            stack[top, 1] = (sx << 1) | (q & 1)
            stack[top, 2] = (sy << 1) | (q >> 1)
            stack[top, 3] = k - 1
            top += 1
    return lo[:n], hi[:n]


def morton_ranges(
    bx0: int, by0: int, bx1: int, by1: int, max_ranges: int | None = None
) -> list[tuple[int, int]]:
    """Merged, sorted ``[lo, hi]`` (inclusive) Morton intervals covering a block box.

    The box is ``bx0..bx1`` x ``by0..by1`` (inclusive). Without ``max_ranges`` the union
    of the intervals is exactly the box's codes. With it, the smallest gaps are bridged
    until at most ``max_ranges`` intervals remain, so the cover may include codes outside
    the box (filter them after the scan).
    """
    for name, v in (("bx0", bx0), ("by0", by0), ("bx1", bx1), ("by1", by1)):
        if not 0 <= v <= (1 << 31) - 1:
            raise GridError(f"{name} must be in 0..{(1 << 31) - 1}, got {v}")
    if bx0 > bx1 or by0 > by1:
        raise GridError(f"empty block box: x {bx0}..{bx1}, y {by0}..{by1}")
    if max_ranges is not None and max_ranges < 1:
        raise GridError(f"max_ranges must be >= 1, got {max_ranges}")
    nbits = max(int(bx1), int(by1)).bit_length()
    lo, hi = _ranges_kernel(int(bx0), int(by0), int(bx1), int(by1), nbits)
    if max_ranges is not None and len(lo) > max_ranges:
        gaps = lo[1:] - hi[:-1]
        # keep the (max_ranges - 1) widest gaps as split points, bridge the rest
        keep = np.sort(np.argsort(gaps, kind="stable")[len(gaps) - (max_ranges - 1) :])
        starts = np.concatenate(([0], keep + 1))
        ends = np.concatenate((keep, [len(lo) - 1]))
        lo, hi = lo[starts], hi[ends]
    return [(int(a), int(b)) for a, b in zip(lo, hi, strict=True)]
