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
    joint = warp_many(_bands(res, 1), [level] * 4, categorical=False)
    alone = [warp(r, level, categorical=False) for r in _bands(res, 1)]
    assert [w.band for w in joint] == ["b1", "b2", "b3", "cls"]
    for a, b in zip(joint, alone, strict=True):
        assert (a.level, a.bx0, a.by1, a.array.dtype) == (b.level, b.bx0, b.by1, b.array.dtype)
        assert np.array_equal(a.array, b.array, equal_nan=True), a.band
        assert a.valid(a.array).any()
    if nearest:  # the holes stay per band: band masks differ after the joint warp
        masks = [np.isnan(w.array) for w in joint[:3]]
        assert not np.array_equal(masks[0], masks[1])


@pytest.mark.parametrize("level", [8, 11, 12, 14])
def test_global_grid_leaves_no_strip_at_the_antimeridian(level: int) -> None:
    """A 3-degree global grid with centres 0..357 (ERA5's layout) covers every longitude
    after the warp: after the move to -180..180 the source ends at 178.5, and GDAL's
    warper wraps geographic sources, so pixels next to 180 take the column centred on
    180 (= -180) on both edges."""
    lat = np.arange(90.0, -90.1, -3.0)  # 61 rows of centres
    values = np.tile(np.arange(120, dtype=np.float32), (lat.size, 1))  # column index
    transform = (3.0, 0.0, -1.5, 0.0, -3.0, 91.5)
    r = SourceRaster("t", None, values, float("nan"), transform, None)
    w = warp(r, level, categorical=False)
    p = 1e-6 * 2 ** (29 - level)  # pixel size in degrees
    west = -180.0 + w.bx0 * 256 * p
    lon = west + (np.arange(w.array.shape[1]) + 0.5) * p
    north = -90.0 + (w.by1 + 1) * 256 * p
    lats = north - (np.arange(w.array.shape[0]) + 0.5) * p
    rows = (lats > -85) & (lats < 85)
    inside = (lon > -180) & (lon < 180)
    band = w.array[np.ix_(rows, inside)]
    assert np.isfinite(band).all()  # no nodata strip anywhere, in particular near 180
    east = np.flatnonzero(inside & (lon > 180.0 - 1.4))  # nearer 180 than 177
    west_edge = np.flatnonzero(inside & (lon < -180.0 + 1.4))
    assert east.size and west_edge.size
    row = int(np.flatnonzero(rows)[10])
    assert (w.array[row, east] == 60).all()  # the column centred on 180 (= -180)
    assert (w.array[row, west_edge] == 60).all()
