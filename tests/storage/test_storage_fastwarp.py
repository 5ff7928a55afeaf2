"""The GDAL-free nearest warp picks, for every grid pixel, the source pixel its centre
falls in, computed independently per pixel with pyproj; on a real Sentinel-2 band."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer
from rasterio.crs import CRS

from gravitas.kernels.grid import window_transform
from gravitas.schemas.grid import BLOCK_SIZE
from gravitas.storage.pixels import fastwarp
from gravitas.storage.pixels.sources import SourceRaster, detect_format, read_rasters
from gravitas.storage.pixels.warp import WarpedRaster, warp, warp_many
from gravitas.storage.sampledata import fetch


def _b01() -> SourceRaster:
    path = next(Path(fetch("s2_l1c")).glob("*_B01.jp2"))
    (r,) = read_rasters(path, detect_format(path), categorical=False)
    assert r.array.dtype == np.float32 and r.crs_wkt
    return r


def _exact(r: SourceRaster, w: WarpedRaster) -> tuple[np.ndarray, np.ndarray]:
    """Nearest source value of every grid pixel centre and the distance (source pixels)
    of that centre to the nearest source pixel edge, both from exact transforms."""
    b = BLOCK_SIZE
    rows, cols = w.array.shape
    by0 = w.by1 - rows // b + 1
    t = window_transform(w.level, w.bx0 * b, by0 * b, w.bx0 * b + cols - 1, w.by1 * b + b - 1)
    jj, ii = np.meshgrid(np.arange(cols) + 0.5, np.arange(rows) + 0.5)
    lon, lat = t[2] + t[0] * jj, t[5] + t[4] * ii
    x, y = Transformer.from_crs(4326, CRS.from_wkt(r.crs_wkt).to_epsg(), always_xy=True).transform(
        lon, lat
    )
    assert r.transform is not None
    a, _, c, _, e, f = r.transform
    col, row = (x - c) / a, (y - f) / e
    h, wd = r.array.shape
    inside = (col >= 0) & (row >= 0) & (col < wd) & (row < h)
    want = np.full((rows, cols), np.nan, np.float32)
    want[inside] = r.array[row[inside].astype(int), col[inside].astype(int)]
    edge = np.minimum(np.abs(col - np.round(col)), np.abs(row - np.round(row)))
    return want, edge


def test_utm_band_matches_exact_nearest() -> None:
    r = _b01()
    w = warp(r, 20, categorical=False)  # 60 m source, ~36 x 57 m grid: nearest
    want, edge = _exact(_b01(), w)
    same = (w.array == want) | (np.isnan(w.array) & np.isnan(want))
    # only centres within the interpolation error of a source pixel edge may differ
    assert same[edge > 2 * fastwarp.MAX_ERROR_PX].all()
    assert same.mean() > 0.999
    assert np.isfinite(w.array).sum() > 0.9 * r.array.size


def test_bands_share_one_gather_and_holes_stay_per_band() -> None:
    a, b = _b01(), _b01()
    a.band, b.band = "x", "y"
    b.array = b.array.copy()
    b.array[:20, :40] = np.nan
    wa, wb = warp_many([a, b], [20, 20], categorical=False)
    alone = warp(_b01(), 20, categorical=False)
    assert np.array_equal(wa.array, alone.array, equal_nan=True)
    assert np.isnan(wb.array).sum() > np.isnan(wa.array).sum()


def test_lattice_refuses_when_the_error_bound_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bound no lattice can meet leaves the destination untouched (GDAL takes over)."""
    r = _b01()
    monkeypatch.setattr(fastwarp, "MAX_ERROR_PX", -1.0)
    dst = np.full((1, 256, 256), np.nan, np.float32)
    assert r.transform is not None
    ok = fastwarp.nearest_onto_grid(
        r.array[None], r.crs_wkt, r.transform, 12.0, 52.5, 0.000512, dst
    )
    assert not ok and np.isnan(dst).all()
    w = warp(r, 20, categorical=False)  # GDAL's warp: same footprint, nearly the same pixels
    want, _ = _exact(_b01(), w)
    assert (np.isfinite(w.array) == np.isfinite(want)).mean() > 0.99
