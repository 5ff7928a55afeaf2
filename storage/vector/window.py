"""Pixel windows on the grid: from a bbox, from a raster's transform, and sub-windows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gravitas.kernels.grid import bbox_to_pixel_range, window_transform
from gravitas.schemas.errors import InputError, RequestError
from gravitas.schemas.grid import check_bbox, check_level, pixel_size
from gravitas.storage.vector.model import BBox, Transform

__all__ = ["MAX_PIXELS", "GridWindow", "grid_raster"]

MAX_PIXELS = 200_000_000
"""Largest window (pixels) rasterised at once; ask at a coarser level beyond it."""


@dataclass(frozen=True)
class GridWindow:
    """Inclusive pixel window ``x0..x1, y0..y1`` at ``level``; array row 0 = pixel row y1."""

    level: int
    x0: int
    y0: int
    x1: int
    y1: int

    @classmethod
    def from_bbox(cls, level: int, bbox: BBox) -> GridWindow:
        """Every pixel the bbox touches at ``level`` (refuses more than MAX_PIXELS)."""
        x0, y0, x1, y1 = bbox_to_pixel_range(check_level(level), check_bbox(bbox))
        win = cls(level, x0, y0, x1, y1)
        if win.size > MAX_PIXELS:
            raise RequestError(
                f"bbox {bbox} at level {level} is {win.width} x {win.height} pixels "
                f"(> {MAX_PIXELS}); use a coarser level or a smaller bbox"
            )
        return win

    @classmethod
    def from_transform(cls, level: int, transform: Any, shape: tuple[int, int]) -> GridWindow:
        """The window of an array with a north-up, grid-aligned ``transform`` at ``level``."""
        t = tuple(float(v) for v in tuple(transform)[:6])
        if len(t) != 6:
            raise InputError(f"transform needs 6 numbers (a, b, c, d, e, f), got {transform!r}")
        a, b, c, d, e, f = t
        p = pixel_size(check_level(level))
        if (
            b != 0
            or d != 0
            or not math.isclose(a, p, rel_tol=1e-9)
            or not math.isclose(e, -p, rel_tol=1e-9)
        ):
            raise InputError(
                f"transform {t} is not north-up with pixels of {p} degrees (level {level}); "
                "warp the raster onto the grid first (kernels.grid.window_transform)"
            )
        fx, fy = (c + 180.0) / p, (f + 90.0) / p
        x0, ytop = round(fx), round(fy)
        if abs(fx - x0) > 1e-6 or abs(fy - ytop) > 1e-6:
            raise InputError(
                f"transform origin ({c}, {f}) is not on a level-{level} pixel corner; "
                "warp the raster onto the grid first"
            )
        rows, cols = shape
        return cls(level, x0, ytop - rows, x0 + cols - 1, ytop - 1)

    @property
    def width(self) -> int:
        """Columns."""
        return self.x1 - self.x0 + 1

    @property
    def height(self) -> int:
        """Rows."""
        return self.y1 - self.y0 + 1

    @property
    def size(self) -> int:
        """Pixels."""
        return self.width * self.height

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the window's array."""
        return self.height, self.width

    @property
    def transform(self) -> Transform:
        """North-up affine of the window's array."""
        return window_transform(self.level, self.x0, self.y0, self.x1, self.y1)

    @property
    def bbox(self) -> BBox:
        """``(west, south, east, north)`` of the window's outer edges."""
        p = pixel_size(self.level)
        return (
            -180.0 + self.x0 * p,
            -90.0 + self.y0 * p,
            -180.0 + (self.x1 + 1) * p,
            -90.0 + (self.y1 + 1) * p,
        )

    def sub(self, bounds: BBox) -> tuple[GridWindow, tuple[slice, slice]] | None:
        """The part of this window touched by ``bounds``, and its (rows, cols) slices."""
        w, s, e, n = bounds
        W, S, E, N = self.bbox
        w, s, e, n = max(w, W), max(s, S), min(e, E), min(n, N)
        if w > e or s > n:
            return None
        x0, y0, x1, y1 = bbox_to_pixel_range(self.level, (w, s, e, n))
        x0, y0 = max(x0, self.x0), max(y0, self.y0)
        x1, y1 = min(x1, self.x1), min(y1, self.y1)
        if x0 > x1 or y0 > y1:
            return None
        sub = GridWindow(self.level, x0, y0, x1, y1)
        rows = slice(self.y1 - y1, self.y1 - y0 + 1)
        cols = slice(x0 - self.x0, x1 - self.x0 + 1)
        return sub, (rows, cols)


def grid_raster(
    raster: Any, transform: Any = None, level: int | None = None
) -> tuple[np.ndarray, GridWindow, Any]:
    """``(2-D array, window, nodata attr)`` of a numpy array + transform or a DataArray.

    A DataArray (anything with ``.attrs``) may carry ``level``, ``transform`` and
    ``nodata`` (or ``_FillValue``) in its attrs; explicit arguments win.
    """
    attrs: dict[str, Any] = dict(getattr(raster, "attrs", {}) or {})
    transform = transform if transform is not None else attrs.get("transform")
    level = level if level is not None else attrs.get("level")
    if transform is None or level is None:
        raise InputError(
            "a raster needs its grid level and transform: pass level= and transform=, "
            "or a DataArray with attrs['level'] and attrs['transform']"
        )
    arr = np.asarray(getattr(raster, "values", raster))
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise InputError(f"raster must be 2-D (rows, cols) or one band, got shape {arr.shape}")
    win = GridWindow.from_transform(int(level), transform, (arr.shape[0], arr.shape[1]))
    nodata = attrs.get("nodata", attrs.get("_FillValue"))
    return arr, win, nodata
