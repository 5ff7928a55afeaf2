"""Where a vector feature is keyed on the nested grid, and the Morton ranges of a query.

**Cell.** A cell at level ``l`` is one *block* of that level: 256 x 256 pixels, an edge
of ``256 * 1e-6 * 2**(29 - l)`` degrees, anchored at (-180, -90); cell ``(bx, by)``
holds the pixels ``x >> 8 == bx``, ``y >> 8 == by`` and has the block's Morton code.
Cells nest: the cell at level ``l + 1`` lies in the cell ``code >> 2`` at level ``l``.

**Polygons** (and lines, multi-geometries) are keyed at their *smallest enclosing
cell*: the finest level whose single cell contains the whole bounding box. Corners map
to cells like pixels do (:func:`gravitas.kernels.grid.lonlat_to_pixel`: half-open, so a
box ending exactly on a cell's east or north edge reaches into the neighbour). A
level-8 cell spans 537 degrees, so every box has one; boxes smaller than a level-29
cell are keyed at 29.

**Points** are keyed by the pixel they fall in at a fine ``point_level`` (default 24,
about 3.6 m). A pixel at level ``l`` has the size of a cell at level ``l + 8``.

**Depth.** The index stores each key as ``(depth, morton)``: depth ``d`` is a square of
``1e-6 * 2**(37 - d)`` degrees, i.e. a cell at level ``d`` or a pixel at level ``d - 8``.
A query at level ``m`` lists the Morton ranges of the bbox's cells at level ``m``; a
feature at depth ``d >= m`` is a candidate when ``code >> 2*(d - m)`` is in them (the
range ``[lo, hi]`` becomes ``[lo << s, ((hi + 1) << s) - 1]``), one at ``d < m`` when
its code is one of the ranges' ancestors (``[lo >> s, hi >> s]``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gravitas.kernels.grid import BLOCK_SHIFT, bbox_to_block_range, lonlat_to_pixel
from gravitas.kernels.morton import morton_encode, morton_ranges
from gravitas.schemas.grid import MAX_LEVEL, GridError, check_bbox, check_level

__all__ = [
    "PIXEL_DEPTH",
    "depth_ranges",
    "enclosing_level",
    "enclosing_levels",
    "point_keys",
    "query_ranges",
]

PIXEL_DEPTH = BLOCK_SHIFT
"""A pixel at level ``l`` is a square at depth ``l + PIXEL_DEPTH``."""
_TOP = MAX_LEVEL + BLOCK_SHIFT  # 37: depth of a level-29 pixel


def _bit_length(v: NDArray[np.int64]) -> NDArray[np.int64]:
    """Exact bit length of non-negative ints below 2**32."""
    out = np.zeros(v.shape, np.int64)
    for b in range(32):
        out[(v >> b) > 0] = b + 1
    return out


def enclosing_levels(
    west: ArrayLike, south: ArrayLike, east: ArrayLike, north: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
    """Level and Morton code of the smallest enclosing cell of each bbox (vectorised)."""
    lons = np.concatenate([np.ravel(west), np.ravel(east)])
    lats = np.concatenate([np.ravel(south), np.ravel(north)])
    x, y = lonlat_to_pixel(MAX_LEVEL, lons, lats)
    n = x.size // 2
    x0, x1, y0, y1 = x[:n], x[n:], y[:n], y[n:]
    if np.any(x1 < x0) or np.any(y1 < y0):
        raise GridError(
            "every bbox needs west <= east and south <= north; "
            "split boxes crossing the antimeridian"
        )
    # the cells of both corners agree at level l iff (corner >> (37 - l)) agree
    s = np.maximum(_bit_length(x0 ^ x1), _bit_length(y0 ^ y1))
    level = np.minimum(_TOP - s, MAX_LEVEL)
    shift = _TOP - level
    return level, morton_encode(x0 >> shift, y0 >> shift)


def enclosing_level(bbox: tuple[float, float, float, float]) -> tuple[int, int]:
    """``(level, morton)`` of the smallest grid cell containing ``(west, south, east, north)``."""
    w, s, e, n = check_bbox(bbox)
    level, code = enclosing_levels([w], [s], [e], [n])
    return int(level[0]), int(code[0])


def point_keys(
    level: int, lon: ArrayLike, lat: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
    """``(depth, morton)`` of the pixel each point falls in at ``level``."""
    x, y = lonlat_to_pixel(check_level(level), lon, lat)
    return np.full(x.shape, level + PIXEL_DEPTH, np.int64), morton_encode(x, y)


def query_ranges(
    bbox: tuple[float, float, float, float], level: int, max_ranges: int = 64
) -> list[tuple[int, int]]:
    """Morton ranges of the cells covering ``bbox`` at ``level`` (over-covering past
    ``max_ranges``; the caller filters exactly)."""
    bx0, by0, bx1, by1 = bbox_to_block_range(check_level(level), bbox)
    return morton_ranges(bx0, by0, bx1, by1, max_ranges=max_ranges)


def depth_ranges(ranges: list[tuple[int, int]], level: int, depth: int) -> list[tuple[int, int]]:
    """The ranges at cell level ``level`` moved to ``depth`` by shifting (merged, sorted)."""
    d = depth - level
    if d >= 0:
        s = 2 * d
        return [(lo << s, ((hi + 1) << s) - 1) for lo, hi in ranges]
    s = -2 * d
    out: list[tuple[int, int]] = []
    for lo, hi in ranges:
        a, b = lo >> s, hi >> s
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
