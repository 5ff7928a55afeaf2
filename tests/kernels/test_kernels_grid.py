"""Property tests of the nested grid: lon/lat <-> pixel <-> block, shifts, transforms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gravitas.kernels.grid import (
    bbox_block_codes,
    bbox_to_block_range,
    block_bounds,
    block_row_weights,
    block_transform,
    cos_lat_weights,
    lonlat_to_pixel,
    native_level,
    native_level_m,
    pixel_in_block,
    pixel_to_block,
    pixel_to_lonlat,
    shift_pixels,
    window_transform,
)
from gravitas.kernels.morton import morton_decode
from gravitas.schemas.grid import GridError, GridSpec, check_bbox

levels = st.integers(min_value=1, max_value=29)
lons = st.floats(min_value=-180, max_value=180, allow_nan=False)
lats = st.floats(min_value=-90, max_value=90, allow_nan=False)


def test_gridspec_pixel_size_and_origin() -> None:
    g = GridSpec(29)
    assert g.pixel_size == pytest.approx(1e-6)
    assert GridSpec(19).pixel_size == pytest.approx(1e-6 * 1024)
    assert g.origin == (-180.0, -90.0)
    assert g.width == 360_000_000 and g.height == 180_000_000


@pytest.mark.parametrize("bad", [0, 30, -1, True, 1.5])
def test_gridspec_rejects_bad_level_and_names_it(bad: object) -> None:
    with pytest.raises(GridError, match=repr(bad) if isinstance(bad, bool | float) else str(bad)):
        GridSpec(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bbox", "word"),
    [
        ((-10, 0, 10, 91), "lat"),
        ((-181, 0, 10, 10), "lon"),
        ((10, 0, -10, 10), "antimeridian"),
        ((0, 10, 1, 5), "south"),
    ],
)
def test_check_bbox_rejects(bbox: tuple[float, float, float, float], word: str) -> None:
    with pytest.raises(GridError, match=word):
        check_bbox(bbox)


@given(levels, lons, lats)
def test_lonlat_pixel_round_trip_within_half_pixel(level: int, lon: float, lat: float) -> None:
    x, y = lonlat_to_pixel(level, lon, lat)
    clon, clat = pixel_to_lonlat(level, x, y)
    half = GridSpec(level).pixel_size / 2
    assert abs(float(clon) - lon) <= half + 1e-9
    assert abs(float(clat) - lat) <= half + 1e-9


@given(levels, st.integers(1, 28), lons, lats)
def test_shift_join_equals_direct_lookup(level: int, d: int, lon: float, lat: float) -> None:
    coarse = level - d
    if coarse < 1:
        return
    x, y = lonlat_to_pixel(level, lon, lat)
    cx, cy = lonlat_to_pixel(coarse, lon, lat)
    sx, sy = shift_pixels(x, y, level, coarse)
    # clipping at lon=180 / lat=90 can differ by one pixel only at the grid's far edge
    if lon < 180 and lat < 90:
        assert (int(sx), int(sy)) == (int(cx), int(cy))
    assert (int(sx), int(sy)) == (int(x) >> d, int(y) >> d)
    fx, _fy = shift_pixels(sx, sy, coarse, level)
    assert int(fx) <= int(x) < int(fx) + (1 << d)


@given(st.integers(0, 2**29 - 1), st.integers(0, 2**29 - 1))
def test_pixel_block_and_in_block(x: int, y: int) -> None:
    bx, by = pixel_to_block(x, y)
    row, col = pixel_in_block(x, y)
    assert int(bx) * 256 + int(col) == x
    assert int(by) * 256 + (255 - int(row)) == y


def test_block_transform_is_north_up_and_matches_bounds() -> None:
    level, bx, by = 14, 7, 5
    a, b, c, d, e, f = block_transform(level, bx, by)
    west, south, east, north = block_bounds(level, bx, by)
    assert (b, d) == (0.0, 0.0) and e == -a
    assert c == pytest.approx(west) and f == pytest.approx(north)
    assert c + 256 * a == pytest.approx(east) and f + 256 * e == pytest.approx(south)
    # row 0, col 0 centre is the north-west pixel of the block
    lon, lat = c + 0.5 * a, f + 0.5 * e
    x, y = lonlat_to_pixel(level, lon, lat)
    assert (int(x), int(y)) == (bx * 256, by * 256 + 255)
    assert pixel_in_block(x, y) == (0, 0)


def test_transforms_work_with_rasterio_affine() -> None:
    from affine import Affine

    t = Affine(*window_transform(20, 1000, 2000, 1099, 2049))
    lon, lat = t @ (0.5, 0.5)
    x, y = lonlat_to_pixel(20, lon, lat)
    assert (int(x), int(y)) == (1000, 2049)


def test_bbox_block_codes_cover_bbox() -> None:
    bbox = (10.0, 45.0, 10.5, 45.3)
    level = 17
    codes = bbox_block_codes(level, bbox)
    bx0, by0, bx1, by1 = bbox_to_block_range(level, bbox)
    assert len(codes) == (bx1 - bx0 + 1) * (by1 - by0 + 1)
    assert np.all(np.diff(codes.astype(np.int64)) > 0)
    xs, ys = morton_decode(codes)
    assert xs.min() == bx0 and xs.max() == bx1 and ys.min() == by0 and ys.max() == by1
    w, s, _, _ = block_bounds(level, bx0, by0)
    _, _, e, n = block_bounds(level, bx1, by1)
    assert w <= 10.0 and s <= 45.0 and e >= 10.5 and n >= 45.3


def test_native_level() -> None:
    assert native_level(1e-6) == 29
    assert native_level(1e-6 * 2**10) == 19
    assert native_level(1e-6 * 2**10 * 1.5) == 19
    assert native_level(1e-6 * 2**10 * 0.99) == 20
    assert native_level(1e-9) == 29
    assert native_level(1000.0) == 1
    # Sentinel-2 10 m: 10/111195 deg ~ 9.0e-5 -> pixel 6.4e-5 (level 23)
    assert native_level_m(10.0) == 23
    assert native_level_m(10.0, lat=70.0) <= native_level_m(10.0)
    with pytest.raises(GridError, match="-1"):
        native_level(-1)


def test_cos_lat_weights() -> None:
    g = GridSpec(22)
    y_eq = 703_125  # 90 / 1.28e-4: the row starting at the equator
    assert y_eq * g.pixel_size == pytest.approx(90.0)
    w = cos_lat_weights(22, y_eq, y_eq + 3)
    assert w[0] == pytest.approx(math.cos(math.radians(g.pixel_size / 2)), rel=1e-6)
    assert np.all(np.diff(w) <= 0)  # shrink towards the pole
    north = cos_lat_weights(15, 7400, 7500)  # about 31 deg N
    assert np.all(np.diff(north) < 0)
    assert cos_lat_weights(1, 0, 1)[0] == pytest.approx(2 / np.radians(GridSpec(1).pixel_size))
    sym = cos_lat_weights(22, y_eq - 3, y_eq)
    assert np.allclose(sym[::-1], w)
    rows = block_row_weights(20, 100)
    assert rows.shape == (256,) and rows[0] > rows[-1]  # about 77 S: north row is larger
