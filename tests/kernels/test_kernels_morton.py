"""Property tests of Morton codes and their range decomposition (numba kernel)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gravitas.kernels.morton import (
    morton_children,
    morton_code,
    morton_decode,
    morton_encode,
    morton_parent,
    morton_ranges,
    morton_xy,
)
from gravitas.schemas.grid import GridError

coords = st.integers(min_value=0, max_value=2**32 - 1)


@given(coords, coords)
def test_round_trip_scalar(x: int, y: int) -> None:
    assert morton_xy(morton_code(x, y)) == (x, y)


@given(st.lists(st.tuples(coords, coords), min_size=1, max_size=50))
def test_round_trip_vectorised(pairs: list[tuple[int, int]]) -> None:
    xs = np.array([p[0] for p in pairs], dtype=np.int64)
    ys = np.array([p[1] for p in pairs], dtype=np.int64)
    codes = morton_encode(xs, ys)
    assert codes.dtype == np.uint64
    dx, dy = morton_decode(codes)
    assert np.array_equal(dx, xs) and np.array_equal(dy, ys)


@given(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1))
def test_parent_and_children(x: int, y: int) -> None:
    code = morton_code(x, y)
    assert morton_xy(morton_parent(code)) == (x >> 1, y >> 1)
    assert morton_xy(morton_parent(code, 3)) == (x >> 3, y >> 3)
    kids = morton_children(code)
    assert [morton_xy(k) for k in kids] == [
        (2 * x, 2 * y), (2 * x + 1, 2 * y), (2 * x, 2 * y + 1), (2 * x + 1, 2 * y + 1)
    ]  # fmt: skip
    assert all(morton_parent(k) == code for k in kids)


def test_z_order_small() -> None:
    assert [morton_code(x, y) for y in range(2) for x in range(2)] == [0, 1, 2, 3]
    assert morton_code(2, 0) == 4 and morton_code(0, 2) == 8


def test_rejects_negative_and_float() -> None:
    with pytest.raises(GridError, match="-1"):
        morton_encode(-1, 0)
    with pytest.raises(GridError, match="float"):
        morton_encode(np.array([1.5]), 0)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 40), st.integers(0, 40), st.integers(0, 20), st.integers(0, 20))
def test_ranges_are_exact_merged_cover(bx0: int, by0: int, w: int, h: int) -> None:
    bx1, by1 = bx0 + w, by0 + h
    ranges = morton_ranges(bx0, by0, bx1, by1)
    xs, ys = np.meshgrid(np.arange(bx0, bx1 + 1), np.arange(by0, by1 + 1))
    want = np.sort(morton_encode(xs.ravel(), ys.ravel()).astype(np.int64))
    got = np.concatenate([np.arange(lo, hi + 1) for lo, hi in ranges])
    assert np.array_equal(got, want)
    # sorted, disjoint and merged (a gap between consecutive ranges)
    for (_, h0), (l1, _) in itertools.pairwise(ranges):
        assert l1 > h0 + 1


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 100), st.integers(0, 100), st.integers(0, 60), st.integers(1, 6))
def test_ranges_capped_still_cover(bx0: int, by0: int, w: int, cap: int) -> None:
    exact = morton_ranges(bx0, by0, bx0 + w, by0 + w)
    capped = morton_ranges(bx0, by0, bx0 + w, by0 + w, max_ranges=cap)
    assert len(capped) <= cap
    for lo, hi in exact:
        assert any(clo <= lo and hi <= chi for clo, chi in capped)


def test_ranges_large_box_is_fast_and_few() -> None:
    # an aligned power-of-two square is one range
    assert morton_ranges(1024, 1024, 2047, 2047) == [
        (morton_code(1024, 1024), morton_code(2047, 2047))
    ]
    with pytest.raises(GridError, match="empty"):
        morton_ranges(5, 0, 4, 0)
