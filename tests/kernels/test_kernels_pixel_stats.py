"""The Numba reduction kernels against numpy/scipy on real data: Stage IV hourly rain of
Hurricane Florence (23 steps, many ties at zero) and ERA5 850 hPa temperature (10
members x 4 times as a 40-step series), both with seeded holes (NaN)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from gravitas.kernels.pixel_stats import masked_stats, time_quantiles, time_trend
from gravitas.storage.sampledata import fetch


@pytest.fixture(scope="module")
def rain() -> np.ndarray:
    with xr.open_dataset(fetch("stageiv_nc")) as ds:
        arr = ds["Total_precipitation_surface_1_Hour_Accumulation"].values
    assert arr.shape == (23, 118, 87) and np.nanmax(arr) > 10
    out = arr.astype(np.float32)
    out[np.random.default_rng(7).random(out.shape) < 0.15] = np.nan  # radar gaps
    out[:, :3, :4] = np.nan
    return out


@pytest.fixture(scope="module")
def t850() -> np.ndarray:
    with xr.open_dataset(fetch("era5_nc")) as ds:
        arr = ds["t"].sel(isobaricInhPa=850).values  # (member, time, lat, lon)
    series = arr.transpose(1, 0, 2, 3).reshape(40, 61, 120).astype(np.float64)
    holes = np.random.default_rng(12).random(series.shape) < 0.1
    series[holes] = np.nan
    series[:, 0, :5] = np.nan  # whole series missing
    series[:-1, 1, :5] = np.nan  # one valid step
    return series


@pytest.mark.parametrize("name", ["rain", "t850"])
def test_time_quantiles_equal_numpy_nanquantile(name: str, request: pytest.FixtureRequest) -> None:
    arr = request.getfixturevalue(name)
    qs = np.array([0.0, 0.05, 0.5, 0.9, 0.95, 1.0])
    got = time_quantiles(arr, qs)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        want = np.nanquantile(arr.astype(np.float64), qs, axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert np.isnan(got).any() and np.isfinite(got).sum() > 0.5 * got.size


def test_time_trend_equals_scipy_linregress(t850: np.ndarray) -> None:
    x = np.arange(40) / 8.0
    got = time_trend(t850, x)
    n = np.isfinite(t850).sum(axis=0)
    assert np.array_equal(got[3], n)
    assert np.isnan(got[:3, 0, :5]).all() and np.isnan(got[:3, 1, :5]).all()
    rng = np.random.default_rng(3)
    for j, i in zip(rng.integers(2, 61, 300), rng.integers(0, 120, 300), strict=True):
        ok = np.isfinite(t850[:, j, i])
        fit = stats.linregress(x[ok], t850[ok, j, i])
        np.testing.assert_allclose(got[:3, j, i], [fit.slope, fit.intercept, fit.rvalue**2],
                                   rtol=1e-9, atol=1e-9)  # fmt: skip


def test_time_trend_on_float32_rain_equals_numpy_least_squares(rain: np.ndarray) -> None:
    x = np.arange(23) / (365.25 * 24)
    got = time_trend(rain, x)
    v = rain.astype(np.float64)
    ok = np.isfinite(v)
    n = ok.sum(0)
    with np.errstate(all="ignore"):
        mx = np.where(ok, x[:, None, None], 0).sum(0) / n
        my = np.nansum(v, 0) / n
        dx, dy = np.where(ok, x[:, None, None] - mx, 0), np.where(ok, v - my, 0)
        slope = (dx * dy).sum(0) / (dx * dx).sum(0)
    np.testing.assert_allclose(got[0], slope, rtol=1e-9, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(got[1], my - slope * mx, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_masked_stats_equal_numpy(rain: np.ndarray) -> None:
    yy, xx = np.mgrid[:118, :87]
    mask = (yy - 60) ** 2 + (xx - 40) ** 2 < 35**2  # a disc
    got = masked_stats(rain, mask)
    for t in range(rain.shape[0]):
        v = rain[t][mask].astype(np.float64)
        v = v[np.isfinite(v)]
        want = [v.size, v.sum(), (v * v).sum(), v.min(), v.max()]
        np.testing.assert_allclose(got[t], want, rtol=1e-9, err_msg=str(t))  # summation order
    whole = masked_stats(rain)
    assert np.array_equal(whole[:, 0], np.isfinite(rain).sum(axis=(1, 2)))
    coded = np.where(np.isfinite(rain), rain, -9999.0).astype(np.float32)
    np.testing.assert_allclose(masked_stats(coded, mask, -9999.0), got, rtol=0)
    empty = masked_stats(rain, np.zeros(mask.shape, bool))
    assert (empty[:, :3] == 0).all() and np.isinf(empty[:, 3:]).all()


def test_bad_shapes_and_quantiles_refused(rain: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"quantiles must be in \[0, 1\], got \[1.5\]"):
        time_quantiles(rain, np.array([1.5]))
    with pytest.raises(ValueError, match="mask of shape"):
        masked_stats(rain, np.ones((3, 3), bool))
    with pytest.raises(ValueError, match=r"\(time, y, x\)"):
        time_trend(rain[0], np.arange(118.0))
