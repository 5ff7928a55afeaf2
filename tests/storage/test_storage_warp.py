"""Bands on one source grid warp together exactly as they warp one by one."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.crs import CRS

from gravitas.storage.pixels.sources import SourceRaster
from gravitas.storage.pixels.warp import warp, warp_many

UTM13 = CRS.from_epsg(32613).to_wkt()


def _bands(res: float, seed: int) -> list[SourceRaster]:
    """Three float bands on one UTM grid, each with its own NaN holes, and an int band."""
    rng = np.random.default_rng(seed)
    transform = (res, 0.0, 500_000.0, 0.0, -res, 4_400_000.0)
    out = []
    for name in ("b1", "b2", "b3"):
        arr = rng.random((90, 70)).astype(np.float32) * 1000
        arr[rng.random(arr.shape) < 0.3] = np.nan  # different holes per band
        out.append(SourceRaster(name, None, arr, float("nan"), transform, UTM13))
    cls = rng.integers(0, 5, (90, 70)).astype(np.uint8)
    out.append(SourceRaster("cls", None, cls, 255, transform, UTM13))
    return out


@pytest.mark.parametrize(
    ("res", "level", "nearest"), [(30.0, 21, True), (30.0, 19, False)]
)  # a grid pixel inside one source pixel (nearest) or covering several (average)
def test_joint_warp_equals_per_band_warp(res: float, level: int, nearest: bool) -> None:
    joint = warp_many(_bands(res, 1), level, categorical=False)
    alone = [warp(r, level, categorical=False) for r in _bands(res, 1)]
    assert [w.band for w in joint] == ["b1", "b2", "b3", "cls"]
    for a, b in zip(joint, alone, strict=True):
        assert (a.level, a.bx0, a.by1, a.array.dtype) == (b.level, b.bx0, b.by1, b.array.dtype)
        assert np.array_equal(a.array, b.array, equal_nan=True), a.band
        assert a.valid(a.array).any()
    if nearest:  # the holes stay per band: band masks differ after the joint warp
        masks = [np.isnan(w.array) for w in joint[:3]]
        assert not np.array_equal(masks[0], masks[1])
