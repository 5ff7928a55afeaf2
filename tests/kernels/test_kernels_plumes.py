"""Plume records and polygons from an enhancement map (synthetic arrays)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import shape

from gravitas.kernels.errors import ShapeMismatchError
from gravitas.kernels.plumes import KG_PER_M2_PER_PPM_M, find_plumes
from gravitas.storage.plumes_vector import geographic_pixel_area_m2, plume_polygons


def test_find_plumes_records_and_ime() -> None:
    enh = np.zeros((50, 60))
    enh[10:15, 10:14] = 1000.0  # 20 px
    enh[30:40, 40:50] = 2000.0  # 100 px
    enh[45, 5] = 5000.0  # a single hot pixel: below min_pixels
    enh[0, 0] = np.nan
    labels, recs = find_plumes(enh, threshold=500.0, min_pixels=5, pixel_area_m2=3600.0, smooth=1)
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


def test_default_detection_finds_the_three_injected_plumes() -> None:
    """The semi-synthetic 3-plume scene (500, 1500, 3000 ppm·m; real spectra, real CH4
    LUT, EMIT noise): the default levels come from the scene's noise; the old fixed
    500 ppm·m threshold found 141 'plumes' here."""
    from gravitas.kernels.ch4_target import select_window, unit_absorption_target
    from gravitas.kernels.matched_filter import retrieve
    from gravitas.kernels.plumes import detection_levels
    from gravitas.storage.readers.envi import read_ch4_lut
    from gravitas.storage.sampledata import fetch
    from gravitas.storage.sampledata.emit_scene import build_emit_radiance

    cube, truth = build_emit_radiance(256, 96, seed=0)
    target = unit_absorption_target(read_ch4_lut(fetch("ch4_lut")), truth.wavelengths, truth.fwhm)
    window = select_window(truth.wavelengths, (2122.0, 2488.0))
    enh = retrieve(cube, target, bands=window).enhancement
    levels = detection_levels(enh)
    assert 0 < levels.noise < levels.seed - levels.level
    labels, recs = find_plumes(enh)
    found = set()
    false = 0
    for r in recs:
        hit = np.unique(truth.labels[labels == r.label])
        hit = hit[hit > 0]
        found.update(int(h) for h in hit)
        false += hit.size == 0
    assert found == {1, 2, 3}, [(r.pixels, r.mean_ppm_m) for r in recs]
    assert false <= 1
    # outlines follow the discs (not widened by the smoothing): means near the truth
    by_truth = {int(np.bincount(truth.labels[labels == r.label]).argmax()): r for r in recs}
    for k, p in enumerate(truth.plumes, 1):
        if k in by_truth and p.enhancement >= 1500:
            assert abs(by_truth[k].mean_ppm_m - p.enhancement) < 0.25 * p.enhancement


def test_explicit_threshold_and_bad_arguments() -> None:
    enh = np.zeros((40, 40))
    enh[10:20, 10:20] = 1000.0
    _labels, recs = find_plumes(enh, threshold=500.0)
    assert len(recs) == 1 and recs[0].pixels >= 80
    with pytest.raises(ShapeMismatchError, match="smooth must be >= 1"):
        find_plumes(enh, smooth=0)
    with pytest.raises(ShapeMismatchError, match="connectivity must be 4 or 8"):
        find_plumes(enh, connectivity=6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "-5"], "--threshold must be > 0 ppm m (or left out), got -5.0"),
        (["--min-pixels", "0"], "--min-pixels must be >= 1, got 0"),
    ],
)
def test_methane_cli_refuses_bad_detection_options(
    tmp_path: Path, args: list[str], message: str
) -> None:
    from typer.testing import CliRunner

    from gravitas.streams.cli.main import app

    out = tmp_path / "ch4"
    res = CliRunner().invoke(app, ["methane", str(tmp_path / "scene.nc"), "--out", str(out), *args])
    assert res.exit_code != 0
    assert message in res.output + str(res.exception)
    assert not out.exists()  # nothing written
