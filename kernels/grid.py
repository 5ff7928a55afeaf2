"""Nested-grid arithmetic: lon/lat <-> pixel <-> block, level shifts, bbox covers, weights.

Conventions (shared by every layer of gravitas):

- Level ``l`` in 1..29 has pixels of ``1e-6 * 2**(29 - l)`` degrees (see
  :mod:`gravitas.schemas.grid`). Pixel ``(x, y)`` covers
  lon ``[-180 + x*p, -180 + (x+1)*p)`` and lat ``[-90 + y*p, -90 + (y+1)*p)``:
  ``x`` grows east, ``y`` grows NORTH.
- Block ``(bx, by)`` holds pixels ``x in [256*bx, 256*bx + 256)``, same for ``y``;
  ``bx = x >> 8``. Its Morton code is ``morton_encode(bx, by)``.
- **Row order inside a block is north-to-south, like a raster**: array row ``r``,
  column ``c`` of block ``(bx, by)`` is pixel ``(256*bx + c, 256*by + 255 - r)``.
  :func:`block_transform` gives the matching north-up affine transform, so GDAL /
  rasterio can warp a source straight into a block array.
- Joins across levels are shifts: pixel ``(x, y)`` at level ``l`` lies in pixel
  ``(x >> d, y >> d)`` at level ``l - d``.
- Ranges of pixels/blocks are inclusive on both ends: ``(x0, y0, x1, y1)``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gravitas.kernels.morton import morton_encode
from gravitas.schemas.grid import (
    BLOCK_SIZE,
    MAX_LEVEL,
    MIN_LEVEL,
    GridError,
    GridSpec,
    check_bbox,
    check_level,
    pixel_size,
)

__all__ = [
    "BLOCK_SHIFT",
    "M_PER_DEG",
    "bbox_block_codes",
    "bbox_to_block_range",
    "bbox_to_pixel_range",
    "block_bounds",
    "block_row_weights",
    "block_transform",
    "cos_lat_weights",
    "grid_spec",
    "lonlat_to_pixel",
    "native_level",
    "native_level_m",
    "pixel_in_block",
    "pixel_to_block",
    "pixel_to_lonlat",
    "shift_pixels",
    "window_transform",
]

BLOCK_SHIFT = 8
"""log2 of the block edge: ``block = pixel >> BLOCK_SHIFT``."""
M_PER_DEG = 111_195.0797
"""Metres per degree of latitude on the mean Earth sphere (R = 6371008.8 m)."""
MAX_BLOCK_CODES = 16_000_000
"""Refuse to list more block codes than this at once (use :func:`morton_ranges`)."""

Transform = tuple[float, float, float, float, float, float]


def grid_spec(level: int) -> GridSpec:
    """The :class:`GridSpec` of ``level`` (validated)."""
    return GridSpec(level)


def _dims(level: int) -> tuple[float, int, int]:
    g = GridSpec(level)
    return g.pixel_size, g.width, g.height


def lonlat_to_pixel(
    level: int, lon: ArrayLike, lat: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Pixel ``(x, y)`` containing each ``(lon, lat)``; lon 180 / lat 90 fall in the last pixel."""
    p, width, height = _dims(level)
    lo = np.asarray(lon, dtype=np.float64)
    la = np.asarray(lat, dtype=np.float64)
    if lo.size and not (np.all(np.isfinite(lo)) and lo.min() >= -180.0 and lo.max() <= 180.0):
        raise GridError(f"lon must be in [-180, 180], got values {lo.min()}..{lo.max()}")
    if la.size and not (np.all(np.isfinite(la)) and la.min() >= -90.0 and la.max() <= 90.0):
        raise GridError(f"lat must be in [-90, 90], got values {la.min()}..{la.max()}")
    x = np.minimum(np.floor((lo + 180.0) / p).astype(np.int64), width - 1)
    y = np.minimum(np.floor((la + 90.0) / p).astype(np.int64), height - 1)
    return x, y


def pixel_to_lonlat(
    level: int, x: ArrayLike, y: ArrayLike, center: bool = True
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(lon, lat)`` of pixel centres (or south-west corners with ``center=False``)."""
    p = pixel_size(level)
    off = 0.5 if center else 0.0
    lon = -180.0 + (np.asarray(x, dtype=np.float64) + off) * p
    lat = -90.0 + (np.asarray(y, dtype=np.float64) + off) * p
    return lon, lat


def pixel_to_block(x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Block ``(bx, by)`` holding pixel ``(x, y)``: a shift by 8."""
    return np.asarray(x, np.int64) >> BLOCK_SHIFT, np.asarray(y, np.int64) >> BLOCK_SHIFT


def pixel_in_block(x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``(row, col)`` of pixel ``(x, y)`` inside its block array (row 0 = north edge)."""
    col = np.asarray(x, np.int64) & (BLOCK_SIZE - 1)
    row = (BLOCK_SIZE - 1) - (np.asarray(y, np.int64) & (BLOCK_SIZE - 1))
    return row, col


def shift_pixels(
    x: ArrayLike, y: ArrayLike, from_level: int, to_level: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Move pixel (or block) coordinates between levels.

    Coarser (``to_level < from_level``): ``x >> d`` (the containing pixel). Finer:
    ``x << d`` (the south-west-most of the covered pixels).
    """
    d = check_level(from_level) - check_level(to_level)
    xa, ya = np.asarray(x, np.int64), np.asarray(y, np.int64)
    if d >= 0:
        return xa >> d, ya >> d
    return xa << -d, ya << -d


def bbox_to_pixel_range(
    level: int, bbox: tuple[float, float, float, float]
) -> tuple[int, int, int, int]:
    """Inclusive pixel range ``(x0, y0, x1, y1)`` touched by ``(west, south, east, north)``."""
    west, south, east, north = check_bbox(bbox)
    x, y = lonlat_to_pixel(level, [west, east], [south, north])
    return int(x[0]), int(y[0]), int(x[1]), int(y[1])


def bbox_to_block_range(
    level: int, bbox: tuple[float, float, float, float]
) -> tuple[int, int, int, int]:
    """Inclusive block range ``(bx0, by0, bx1, by1)`` covering the bbox at ``level``."""
    x0, y0, x1, y1 = bbox_to_pixel_range(level, bbox)
    s = BLOCK_SHIFT
    return x0 >> s, y0 >> s, x1 >> s, y1 >> s


def bbox_block_codes(level: int, bbox: tuple[float, float, float, float]) -> NDArray[np.uint64]:
    """Sorted Morton codes of every block covering the bbox at ``level``."""
    bx0, by0, bx1, by1 = bbox_to_block_range(level, bbox)
    n = (bx1 - bx0 + 1) * (by1 - by0 + 1)
    if n > MAX_BLOCK_CODES:
        raise GridError(
            f"bbox {bbox} covers {n} blocks at level {level} (> {MAX_BLOCK_CODES}); "
            "use a coarser level or morton_ranges()"
        )
    xs, ys = np.meshgrid(np.arange(bx0, bx1 + 1), np.arange(by0, by1 + 1))
    return np.sort(morton_encode(xs.ravel(), ys.ravel()))


def block_bounds(level: int, bx: int, by: int) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of block ``(bx, by)`` in degrees."""
    p = pixel_size(level) * BLOCK_SIZE
    return -180.0 + bx * p, -90.0 + by * p, -180.0 + (bx + 1) * p, -90.0 + (by + 1) * p


def window_transform(level: int, x0: int, y0: int, x1: int, y1: int) -> Transform:
    """North-up affine ``(a, b, c, d, e, f)`` of the pixel window ``x0..x1, y0..y1``.

    Compatible with ``rasterio.Affine(*t)``; the window array has
    ``y1 - y0 + 1`` rows (row 0 = pixel row ``y1``, the northernmost) and
    ``x1 - x0 + 1`` columns.
    """
    if x1 < x0 or y1 < y0:
        raise GridError(f"empty pixel window: x {x0}..{x1}, y {y0}..{y1}")
    p = pixel_size(level)
    return (p, 0.0, -180.0 + x0 * p, 0.0, -p, -90.0 + (y1 + 1) * p)


def block_transform(level: int, bx: int, by: int) -> Transform:
    """North-up affine of block ``(bx, by)``: its 256 x 256 array, row 0 = north edge."""
    b = BLOCK_SIZE
    return window_transform(level, bx * b, by * b, bx * b + b - 1, by * b + b - 1)


def native_level(resolution_deg: float) -> int:
    """Coarsest level whose pixel size is <= ``resolution_deg`` (never loses detail).

    Sources finer than level 29 (1e-6 degrees) map to 29.
    """
    if not (math.isfinite(resolution_deg) and resolution_deg > 0):
        raise GridError(f"resolution_deg must be a positive number, got {resolution_deg}")
    for level in range(MIN_LEVEL, MAX_LEVEL + 1):
        if pixel_size(level) <= resolution_deg * (1 + 1e-9):
            return level
    return MAX_LEVEL


def native_level_m(resolution_m: float, lat: float = 0.0) -> int:
    """Native level of a source sampled every ``resolution_m`` metres near latitude ``lat``.

    Uses the east-west extent of a degree at ``lat`` (``M_PER_DEG * cos(lat)``), which
    matches how a UTM scene's columns map to longitude; pass ``lat=0`` to keep the
    north-south resolution (one level finer at |lat| > 60).
    """
    if not (math.isfinite(resolution_m) and resolution_m > 0):
        raise GridError(f"resolution_m must be a positive number, got {resolution_m}")
    if not (math.isfinite(lat) and -90.0 < lat < 90.0):
        raise GridError(f"lat must be in (-90, 90) (poles have no east-west scale), got {lat}")
    return native_level(resolution_m / (M_PER_DEG * math.cos(math.radians(lat))))


def cos_lat_weights(level: int, y0: int, y1: int) -> NDArray[np.float64]:
    """Relative area of the pixel rows ``y0..y1-1`` (half-open, south to north).

    Exact spherical cell area divided by an equatorial cell of the same size:
    ``(sin(north) - sin(south)) / (north - south)`` in radians, i.e. the mean of
    ``cos(lat)`` over the row. Rows reaching past a pole are clipped to it (0 beyond).
    """
    if y1 < y0:
        raise GridError(f"y1 must be >= y0, got y0={y0} y1={y1}")
    p = pixel_size(level)
    y = np.arange(y0, y1, dtype=np.float64)
    south = np.clip(-90.0 + y * p, -90.0, 90.0)
    north = np.clip(-90.0 + (y + 1) * p, -90.0, 90.0)
    # sin(n) - sin(s) = 2 cos((n + s) / 2) sin((n - s) / 2): no cancellation for tiny
    # rows; unclipped rows use the exact height p, not the rounded north - south
    clipped = (y < 0) | (-90.0 + (y + 1) * p > 90.0)
    height = np.where(clipped, north - south, p)
    mid = np.where(clipped, (north + south) / 2, -90.0 + (y + 0.5) * p)
    area = 2.0 * np.cos(np.radians(mid)) * np.sin(np.radians(height) / 2)
    return area / math.radians(p)


def block_row_weights(level: int, by: int) -> NDArray[np.float64]:
    """:func:`cos_lat_weights` of block row ``by`` in block row order (north first)."""
    y0 = by * BLOCK_SIZE
    return cos_lat_weights(level, y0, y0 + BLOCK_SIZE)[::-1].copy()
