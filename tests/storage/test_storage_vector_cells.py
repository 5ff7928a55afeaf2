"""Grid keys of vector features: smallest enclosing cell, point pixels, range shifts.

Unit tests on made-up boxes; the real-data checks are in test_storage_vector_store.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gravitas.kernels.grid import bbox_to_block_range, lonlat_to_pixel
from gravitas.kernels.morton import morton_code, morton_encode, morton_ranges
from gravitas.schemas.grid import GridError
from gravitas.storage.vector.cells import (
    PIXEL_DEPTH,
    depth_ranges,
    enclosing_level,
    enclosing_levels,
    point_keys,
)


def _single_cell(level: int, bbox: tuple[float, float, float, float]) -> bool:
    bx0, by0, bx1, by1 = bbox_to_block_range(level, bbox)
    return bx0 == bx1 and by0 == by1


@pytest.mark.parametrize(
    "bbox",
    [
        (12.5, 52.45, 12.51, 52.46),
        (-180.0, -90.0, 180.0, 90.0),
        (0.0, 0.0, 0.0, 0.0),
        (-0.001, -0.001, 0.001, 0.001),  # equator x prime meridian
        (179.9, 89.9, 180.0, 90.0),
        (-122.4, 37.7, -122.3, 37.8),
    ],
)
def test_storage_vector_enclosing_level_is_finest_single_cell(
    bbox: tuple[float, float, float, float],
) -> None:
    level, code = enclosing_level(bbox)
    assert _single_cell(level, bbox)
    bx0, by0, _, _ = bbox_to_block_range(level, bbox)
    assert code == morton_code(bx0, by0)
    if level < 29:
        assert not _single_cell(level + 1, bbox)


def test_storage_vector_enclosing_levels_vectorised_random_boxes() -> None:
    rng = np.random.default_rng(7)
    w = rng.uniform(-180, 179, 500)
    s = rng.uniform(-90, 89, 500)
    size = 10.0 ** rng.uniform(-7, 1, 500)
    e, n = np.minimum(w + size, 180), np.minimum(s + size, 90)
    levels, codes = enclosing_levels(w, s, e, n)
    for i in range(500):
        box = (w[i], s[i], e[i], n[i])
        assert (int(levels[i]), int(codes[i])) == enclosing_level(box)
        assert _single_cell(int(levels[i]), box)
        if levels[i] < 29:
            assert not _single_cell(int(levels[i]) + 1, box)
    assert levels.min() >= 8 and levels.max() == 29


def test_storage_vector_enclosing_rejects_inverted_box() -> None:
    with pytest.raises(GridError, match="antimeridian"):
        enclosing_level((10.0, 0.0, 9.0, 1.0))


def test_storage_vector_point_keys_are_pixel_codes() -> None:
    lon, lat = np.array([12.6, -70.1]), np.array([52.5, -33.4])
    depth, code = point_keys(24, lon, lat)
    x, y = lonlat_to_pixel(24, lon, lat)
    assert depth.tolist() == [24 + PIXEL_DEPTH] * 2
    assert code.tolist() == morton_encode(x, y).tolist()
    # a level-24 pixel lies in the level-24 block (pixel >> 8): code >> 16
    bx0, by0, _, _ = bbox_to_block_range(24, (12.6, 52.5, 12.6, 52.5))
    assert int(code[0]) >> 2 * PIXEL_DEPTH == morton_code(bx0, by0)


def test_storage_vector_depth_ranges_match_explicit_shifts() -> None:
    ranges = morton_ranges(5, 3, 12, 9)
    codes = {c for lo, hi in ranges for c in range(lo, hi + 1)}
    finer = depth_ranges(ranges, 10, 12)
    assert {c >> 4 for lo, hi in finer for c in range(lo, hi + 1)} == codes
    assert sum(hi - lo + 1 for lo, hi in finer) == 16 * len(codes)
    coarser = depth_ranges(ranges, 10, 8)
    assert {c for lo, hi in coarser for c in range(lo, hi + 1)} == {c >> 4 for c in codes}
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(coarser))
