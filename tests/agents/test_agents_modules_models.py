"""The two pre-built models against independent computations on the real files:
downscaling of ERA5 (xarray's interpolation + scipy's ranks) and flood screening of the
Luxembourg DEM (a morphological-reconstruction fill by scipy.ndimage)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import xarray as xr
from scipy import ndimage, stats

from gravitas.agents.modules.downscale import downscale, fine_axis, read_era5
from gravitas.agents.modules.flood import priority_flood, read_dem, screen
from gravitas.storage.sampledata import fetch


def test_downscaling_equals_xarray_interp_then_rank_mapping() -> None:
    path = str(fetch("era5_nc"))
    coarse, lat, lon = read_era5(path, "t", 4, 1, 850.0)
    factor = 3
    smooth, flat, flon = downscale(coarse, lat, lon, factor, noise=0.0, seed=1)
    with xr.open_dataset(path) as ds:
        field = ds["t"].sel(number=4, isobaricInhPa=850.0).isel(time=1)
        # fine points beyond the last coarse row/column sit on it (as the module clamps)
        interp = field.interp(
            latitude=np.clip(flat, lat.min(), lat.max()),
            longitude=np.clip(flon, lon.min(), lon.max()),
            method="linear",
        ).values
    assert np.isfinite(interp).all()
    ranks = stats.rankdata(interp.ravel(), method="ordinal") - 1
    probs = (ranks + 0.5) / ranks.size
    mapped = np.quantile(coarse.ravel(), probs).reshape(interp.shape)
    # the same distribution exactly; per pixel, near-ties of the two interpolations (last
    # bits) may swap ranks between neighbouring quantiles
    np.testing.assert_allclose(np.sort(smooth.ravel()), np.sort(mapped.ravel()), rtol=1e-12)
    np.testing.assert_allclose(smooth, mapped, atol=0.05)
    assert np.mean(np.isclose(smooth, mapped, rtol=1e-9)) > 0.9
    # the mapped field has the coarse distribution's quantiles
    assert np.quantile(smooth, 0.99) == pytest.approx(np.quantile(coarse, 0.99), rel=1e-3)
    assert len(flat) == factor * len(lat) and np.allclose(fine_axis(lat, 3)[1::3], lat)

    noisy, _, _ = downscale(coarse, lat, lon, factor, noise=0.5, seed=11)
    again, _, _ = downscale(coarse, lat, lon, factor, noise=0.5, seed=11)
    other, _, _ = downscale(coarse, lat, lon, factor, noise=0.5, seed=12)
    assert np.array_equal(noisy, again) and not np.array_equal(noisy, other)
    ny, nx = coarse.shape
    blocks = lambda a: a.reshape(ny, factor, nx, factor).mean(axis=(1, 3))  # noqa: E731
    np.testing.assert_allclose(blocks(noisy), blocks(smooth), atol=1e-9)
    assert np.std(noisy - smooth) > 0.1


def reconstruction_fill(dem: np.ndarray) -> np.ndarray:
    """Depression filling by morphological reconstruction by erosion (independent)."""
    valid = np.isfinite(dem)
    z = np.where(valid, dem, -np.inf)
    edge = ~ndimage.binary_erosion(valid, structure=np.ones((3, 3)), border_value=0)
    marker = np.where(edge | ~valid, z, np.inf)
    while True:
        eroded = ndimage.grey_erosion(marker, footprint=np.ones((3, 3)), mode="nearest")
        nxt = np.where(edge | ~valid, z, np.maximum(z, eroded))
        if np.array_equal(nxt, marker):
            return np.where(valid, nxt, np.nan)
        marker = nxt


def test_flood_screening_against_an_independent_fill() -> None:
    dem, lat, res = read_dem(str(fetch("lux_dem")))
    with rasterio.open(fetch("lux_dem")) as src:
        assert dem.shape == (src.height, src.width) == (90, 95)
    filled, _ = priority_flood(dem)
    np.testing.assert_array_equal(np.isnan(filled), np.isnan(dem))
    np.testing.assert_allclose(filled, reconstruction_fill(dem), equal_nan=True)

    # rain enough to overflow every depression: depth is the whole fill
    deluge = screen(dem, lat, res, rain_mm=1e6, infiltration_mm=0.0)
    pit = np.nan_to_num(filled - dem)
    np.testing.assert_allclose(np.nan_to_num(deluge.depth), pit, atol=1e-9)
    capacity = float((pit * _areas(lat, res, dem.shape)).sum())
    assert deluge.stored_m3 == pytest.approx(capacity, rel=1e-9)

    # moderate rain: volumes balance and depths never exceed the fill
    light = screen(dem, lat, res, rain_mm=40.0, infiltration_mm=10.0)
    assert np.all(np.nan_to_num(light.depth) <= pit + 1e-9)
    assert 0 < light.stored_m3 < capacity
    assert light.stored_m3 + light.spilled_m3 <= light.excess_m3 * (1 + 1e-9)
    dry = screen(dem, lat, res, rain_mm=5.0, infiltration_mm=10.0)
    assert dry.stored_m3 == 0 and np.nanmax(dry.depth) == 0


def _areas(lat: np.ndarray, res: tuple[float, float], shape: tuple[int, ...]) -> np.ndarray:
    m = 111_320.0
    return (res[1] * m) * (res[0] * m * np.cos(np.radians(lat)))[:, None] * np.ones((1, shape[1]))
