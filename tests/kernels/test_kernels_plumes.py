"""Plume records and polygons from an enhancement map (synthetic arrays)."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import shape

from gravitas.kernels.plumes import KG_PER_M2_PER_PPM_M, find_plumes
from gravitas.storage.plumes_vector import geographic_pixel_area_m2, plume_polygons


def test_find_plumes_records_and_ime() -> None:
    enh = np.zeros((50, 60))
    enh[10:15, 10:14] = 1000.0  # 20 px
    enh[30:40, 40:50] = 2000.0  # 100 px
    enh[45, 5] = 5000.0  # a single hot pixel: below min_pixels
    enh[0, 0] = np.nan
    labels, recs = find_plumes(enh, threshold=500.0, min_pixels=5, pixel_area_m2=3600.0)
    assert [r.pixels for r in recs] == [100, 20]  # largest first
    big = recs[0]
    assert big.max_ppm_m == 2000.0 and big.mean_ppm_m == 2000.0
    assert big.area_m2 == pytest.approx(100 * 3600.0)
    assert big.ime_kg == pytest.approx(2000.0 * 100 * 3600.0 * KG_PER_M2_PER_PPM_M)
    assert abs(KG_PER_M2_PER_PPM_M - 7.16e-7) < 1e-9
    assert (big.centroid_row, big.centroid_col) == pytest.approx((34.5, 44.5))
    assert labels[45, 5] == 0 and labels[35, 45] == 1 and labels[12, 12] == 2


def test_polygons_follow_pixel_edges() -> None:
    labels = np.zeros((10, 10), dtype=np.int32)
    labels[2:5, 3:7] = 1
    gt = (100.0, 2.0, 0.0, 50.0, 0.0, -2.0)
    fc = plume_polygons(labels, gt)
    assert len(fc["features"]) == 1
    poly = shape(fc["features"][0]["geometry"])
    assert poly.area == pytest.approx(12 * 4.0)
    assert poly.bounds == pytest.approx((106.0, 40.0, 114.0, 46.0))
    area = geographic_pixel_area_m2((0, 0.0005, 0, 60.0, 0, -0.0005), 2, 3)
    assert area.shape == (2, 3) and 1500 < area[0, 0] < 1600  # 55.7 m x 27.8 m at 60 N
