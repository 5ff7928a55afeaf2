"""Burn features onto a grid window (class codes or feature indices; 0 = nodata)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import rasterio.features
from rasterio.transform import Affine
from shapely.geometry.base import BaseGeometry

from gravitas.storage.vector.window import GridWindow

__all__ = ["burn", "feature_mask"]


def burn(
    shapes: Sequence[tuple[BaseGeometry, int]],
    window: GridWindow,
    dtype: np.dtype[Any] | type = np.uint8,
    all_touched: bool = False,
) -> np.ndarray:
    """Array of ``window.shape`` with each ``(geometry, value)`` burnt in order (later wins).

    A pixel is burnt when its centre lies inside the geometry, or with ``all_touched``
    when the geometry touches it at all (GDAL's rules).
    """
    shapes = [(g, int(v)) for g, v in shapes if v != 0]
    if not shapes:
        return np.zeros(window.shape, dtype)
    return rasterio.features.rasterize(
        shapes,
        out_shape=window.shape,
        transform=Affine(*window.transform),
        fill=0,
        all_touched=all_touched,
        dtype=dtype,
    )


def feature_mask(
    geometry: BaseGeometry, window: GridWindow, all_touched: bool = False
) -> tuple[np.ndarray, tuple[slice, slice]] | None:
    """Boolean mask of one geometry on the part of ``window`` its bounds touch.

    Returns ``(mask, (rows, cols))`` where the slices cut the matching part out of an
    array of ``window.shape``, or None when the geometry misses the window.
    """
    part = window.sub(geometry.bounds)
    if part is None:
        return None
    sub, slices = part
    mask = burn([(geometry, 1)], sub, np.uint8, all_touched).astype(bool)
    return mask, slices
