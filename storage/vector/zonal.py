"""Raster-vector joins: statistics of a grid raster inside each feature."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gravitas.storage.vector.model import Feature, ZonalStats
from gravitas.storage.vector.rasterize import feature_mask
from gravitas.storage.vector.window import GridWindow

__all__ = ["valid_mask", "zonal"]

_NAN = float("nan")


def valid_mask(values: np.ndarray, nodata: Any) -> np.ndarray:
    """True where a value is data: not NaN and not equal to ``nodata``."""
    ok = np.ones(values.shape, bool)
    if values.dtype.kind == "f":
        ok &= ~np.isnan(values)
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        ok &= values != nodata
    return ok


def _stats(feature: Feature, values: np.ndarray) -> ZonalStats:
    if values.size == 0:
        return ZonalStats(
            feature.fid, feature.feature_id, feature.class_code, 0, _NAN, _NAN, _NAN, _NAN
        )
    v = values.astype(np.float64)
    return ZonalStats(
        fid=feature.fid,
        feature_id=feature.feature_id,
        class_code=feature.class_code,
        count=int(v.size),
        mean=float(v.mean()),
        min=float(v.min()),
        max=float(v.max()),
        std=float(v.std()),
    )


def zonal(
    array: np.ndarray,
    window: GridWindow,
    features: Sequence[Feature],
    nodata: Any = None,
    all_touched: bool = False,
) -> list[ZonalStats]:
    """Per-feature count, mean, min, max and std of ``array`` (on ``window``).

    Each feature is rasterised on its own (overlapping features share pixels), over the
    sub-window its bounds touch only.
    """
    out = []
    for feature in features:
        hit = feature_mask(feature.geometry, window, all_touched)
        if hit is None:
            out.append(_stats(feature, np.empty(0)))
            continue
        mask, (rows, cols) = hit
        values = array[rows, cols][mask]
        out.append(_stats(feature, values[valid_mask(values, nodata)]))
    return out
