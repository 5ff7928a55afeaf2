"""Gap filling, temporal aggregation and normalisation statistics (made-up cubes)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gravitas.kernels.datacube import (
    aggregate_time,
    apply_normalisation,
    band_statistics,
    fill_spatial,
    fill_temporal,
    gap_fill,
)
from gravitas.kernels.datacube.errors import BadParameterError, ShapeMismatchError

nan = np.nan


def test_temporal_linear_interpolation_uses_times() -> None:
    series = np.array([nan, 1.0, nan, nan, 7.0, nan]).reshape(6, 1, 1)
    out, mask = fill_temporal(series)
    assert np.array_equal(out.ravel(), [nan, 1, 3, 5, 7, nan], equal_nan=True)
    assert mask.ravel().tolist() == [False, False, True, True, False, False]
    # uneven steps: 0, 1, 2, 10, 11 s -> value at 2 s is 1 + 6 * (1 / 10)
    series = np.array([nan, 1.0, nan, nan, 7.0]).reshape(5, 1, 1)
    out, _ = fill_temporal(series, times=[0, 1, 2, 10, 11])
    assert out[2, 0, 0] == pytest.approx(1 + 6 * 1 / 10)
    assert out[3, 0, 0] == pytest.approx(1 + 6 * 9 / 10)


def test_spatial_nearest_fill() -> None:
    img = np.array([[1.0, nan, nan], [nan, nan, nan], [nan, nan, 9.0]])
    out, mask = fill_spatial(img)
    assert out[0, 1] == 1.0 and out[1, 0] == 1.0  # distance 1 from the 1
    assert out[1, 2] == 9.0 and out[2, 1] == 9.0  # distance 1 from the 9
    assert set(np.unique(out)) == {1.0, 9.0}
    assert mask.sum() == 7
    empty, none = fill_spatial(np.full((2, 2), nan))
    assert np.isnan(empty).all() and not none.any()


def test_gap_fill_temporal_then_spatial() -> None:
    cube = np.array(
        [
            [[1.0, 2.0], [3.0, nan]],
            [[nan, nan], [nan, nan]],
            [[3.0, 4.0], [5.0, 6.0]],
        ],
        dtype=np.float32,
    )
    out, mask = gap_fill(cube)
    assert out.dtype == np.float32
    assert out[1, 0].tolist() == [2, 3] and out[1, 1, 0] == 4  # interpolated in time
    # (1, 1) has no earlier value: spatial nearest, a distance-1 tie between neighbours
    assert out[0, 1, 1] in (2.0, 3.0) and out[1, 1, 1] in (3.0, 4.0)
    assert mask.sum() == 5
    with pytest.raises(ShapeMismatchError, match="at least 3 dims"):
        gap_fill(np.zeros((2, 2)))
    with pytest.raises(BadParameterError, match="strictly increasing"):
        fill_temporal(cube, times=[0, 0, 1])


cubes = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5)),
    elements=st.floats(-1e3, 1e3) | st.just(nan),
)


@settings(max_examples=60, deadline=None)
@given(cubes, st.booleans(), st.booleans())
def test_gap_fill_keeps_valid_and_mask_is_exact(
    cube: np.ndarray, temporal: bool, spatial: bool
) -> None:
    out, mask = gap_fill(cube, temporal=temporal, spatial=spatial)
    valid = np.isfinite(cube)
    assert np.array_equal(out[valid], cube[valid])
    assert np.array_equal(mask, ~valid & np.isfinite(out))
    if spatial:
        # every time slice with a valid pixel ends fully filled
        has_any = np.isfinite(out).reshape(out.shape[0], -1).any(axis=1)
        assert np.isfinite(out[has_any]).all()
    # interpolated values stay inside the range of the valid ones
    if valid.any():
        assert np.nanmin(out) >= cube[valid].min() - 1e-9
        assert np.nanmax(out) <= cube[valid].max() + 1e-9


def test_aggregate_methods() -> None:
    cube = np.array([1.0, nan, 3.0, 4.0, nan, nan]).reshape(6, 1, 1)
    bins = [5, 5, 7, 7, 9, 9]
    for method, expect in {
        "mean": [1, 3.5, nan],
        "max": [1, 4, nan],
        "min": [1, 3, nan],
        "sum": [1, 7, nan],
        "nearest": [1, 3, nan],  # centre of bin 7 is 2.5 -> tie -> the earlier step
    }.items():
        out, ids = aggregate_time(cube, bins, method)  # type: ignore[arg-type]
        assert ids.tolist() == [5, 7, 9]
        assert np.array_equal(out.ravel(), expect, equal_nan=True), method
    out, _ = aggregate_time(cube, bins, "nearest", times=[0, 1, 2, 3, 4, 5], centers=[0, 3.2, 4])
    assert out.ravel()[1] == 4.0
    with pytest.raises(ShapeMismatchError, match="3 bin ids for 6 time steps"):
        aggregate_time(cube, [0, 1, 2])
    with pytest.raises(BadParameterError, match="unknown aggregation"):
        aggregate_time(cube, bins, "median")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(cubes, st.data())
def test_aggregate_matches_numpy(cube: np.ndarray, data: st.DataObject) -> None:
    bins = np.array(
        data.draw(st.lists(st.integers(0, 3), min_size=cube.shape[0], max_size=cube.shape[0]))
    )
    out, ids = aggregate_time(cube, bins, "max")
    assert out.shape == (ids.size, *cube.shape[1:])
    for k, b in enumerate(ids):
        part = cube[bins == b]
        has = np.isfinite(part).any(axis=0)
        ref = np.where(has, np.where(np.isfinite(part), part, -np.inf).max(axis=0), nan)
        assert np.array_equal(out[k], ref, equal_nan=True)


def test_band_statistics_and_normalisation() -> None:
    cube = np.stack([np.arange(100.0).reshape(10, 10), np.full((10, 10), 5.0)])
    cube[0, 0, 0] = nan
    stats = band_statistics(cube)
    assert stats.count.tolist() == [99, 100]
    assert stats.mean[0] == pytest.approx(np.arange(1, 100).mean())
    assert stats.min.tolist() == [1, 5] and stats.max.tolist() == [99, 5]
    assert stats.p2[0] == pytest.approx(np.percentile(np.arange(1, 100), 2))
    assert stats.std[1] == 0
    z = apply_normalisation(cube, stats)
    assert np.nanmean(z[0]) == pytest.approx(0, abs=1e-12)
    assert np.nanstd(z[0]) == pytest.approx(1)
    assert (z[1] == 0).all()  # zero spread divides by 1
    assert np.isnan(z[0, 0, 0])
    mm = apply_normalisation(cube, stats, "minmax")
    assert np.nanmin(mm[0]) == 0 and np.nanmax(mm[0]) == 1
    pc = apply_normalisation(cube, stats, "percentile", clip=True)
    assert np.nanmin(pc) >= 0 and np.nanmax(pc) <= 1
    # (t, band, y, x) uses the same default band axis
    four = band_statistics(np.stack([cube, cube]))
    assert four.count.tolist() == [198, 200]
    assert set(stats.to_dict()) == {"mean", "std", "min", "max", "p2", "p98", "count"}
    empty = band_statistics(np.full((1, 2, 2), nan))
    assert empty.count.tolist() == [0] and np.isnan(empty.mean[0])
    with pytest.raises(ShapeMismatchError, match="stats hold 2"):
        apply_normalisation(np.zeros((3, 2, 2)), stats)
