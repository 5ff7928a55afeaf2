"""Joining nested-grid levels by shifts: coarsen, refine, windows, crop/pad (made-up arrays)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gravitas.kernels.datacube import align_window, coarsen, crop_pad, refine, shift_window
from gravitas.kernels.datacube.errors import BadParameterError, ShapeMismatchError
from gravitas.kernels.datacube.resample import to_level, window_shape


def test_nan_aware_mean() -> None:
    a = np.array([[1.0, 3.0, np.nan, np.nan], [5.0, np.nan, np.nan, np.nan]], dtype=np.float32)
    out = coarsen(a, 1)
    assert out.dtype == np.float32
    assert out[0, 0] == 3.0  # (1 + 3 + 5) / 3
    assert np.isnan(out[0, 1])


def test_mean_with_nodata_on_integers() -> None:
    a = np.array([[0, 4], [2, 0]], dtype=np.uint16)
    assert coarsen(a, 1, nodata=0).tolist() == [[3.0]]


def test_mode_for_categorical() -> None:
    a = np.array([[1, 1, 2, 2], [1, 3, 2, 0], [0, 0, 4, 5], [0, 0, 5, 4]], dtype=np.uint8)
    out = coarsen(a, 1, method="mode", nodata=0)
    assert out.dtype == np.uint8
    assert out.tolist() == [[1, 2], [0, 4]]  # 0 = nodata block; 4/5 tie -> smaller


def test_nearest_picks_the_block_centre_pixel() -> None:
    a = np.arange(16).reshape(4, 4)
    assert coarsen(a, 2, method="nearest").tolist() == [[10]]


def test_coarsen_needs_whole_blocks() -> None:
    with pytest.raises(ShapeMismatchError, match="align_window"):
        coarsen(np.zeros((3, 4)), 1)
    with pytest.raises(BadParameterError, match="unknown coarsen method"):
        coarsen(np.zeros((2, 2)), 1, method="median")  # type: ignore[arg-type]
    with pytest.raises(BadParameterError, match="level shift"):
        refine(np.zeros((2, 2)), -1)


def test_windows_shift_like_pixels() -> None:
    assert shift_window((5, 6, 9, 9), 1) == (2, 3, 4, 4)
    assert shift_window((2, 3, 4, 4), -1) == (4, 6, 9, 9)
    assert align_window((5, 6, 9, 9), 2) == (4, 4, 11, 11)
    assert window_shape((4, 4, 11, 11)) == (8, 8)


def test_crop_pad_keeps_north_up_rows() -> None:
    # window x 0..2, y 10..11: row 0 is y = 11
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    out = crop_pad(a, (0, 10, 2, 11), (1, 9, 3, 10))
    # target rows: y = 10 (row 0), y = 9 (row 1); cols x = 1..3
    assert np.array_equal(out, [[5.0, 6.0, np.nan], [np.nan] * 3], equal_nan=True)
    ints = crop_pad(a.astype(int), (0, 10, 2, 11), (0, 10, 2, 11), fill=-1)
    assert ints.dtype.kind == "i" and ints.tolist() == [[1, 2, 3], [4, 5, 6]]
    with pytest.raises(ShapeMismatchError, match="does not hold window"):
        crop_pad(a, (0, 0, 5, 5), (0, 0, 1, 1))


def test_to_level_coarser_and_finer() -> None:
    a = np.arange(9, dtype=float).reshape(3, 3)  # x 1..3, y 1..3
    out, win = to_level(a, (1, 1, 3, 3), 10, 9)
    assert win == (0, 0, 1, 1)
    # aligned window x 0..3, y 0..3, rows north first:
    # y3 [nan 0 1 2], y2 [nan 3 4 5], y1 [nan 6 7 8], y0 all nan
    assert np.array_equal(out, [[1.5, 3.0], [6.0, 7.5]])
    back, win2 = to_level(out, win, 9, 10)
    assert win2 == (0, 0, 3, 3) and back.shape == (4, 4)
    same, win3 = to_level(a, (1, 1, 3, 3), 7, 7)
    assert same is not None and win3 == (1, 1, 3, 3)


@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),
        elements=st.floats(-1e6, 1e6) | st.just(np.nan),
    ),
    st.integers(0, 2),
)
def test_refine_then_coarsen_is_identity(a: np.ndarray, d: int) -> None:
    up = refine(a, d)
    assert up.shape == (*a.shape[:-2], a.shape[-2] << d, a.shape[-1] << d)
    for method in ("mean", "nearest"):
        down = coarsen(up, d, method=method)  # type: ignore[arg-type]
        assert down.shape == a.shape
        assert np.allclose(down, a, equal_nan=True)


@given(
    hnp.arrays(
        np.int16, st.tuples(st.integers(1, 4), st.integers(1, 4)), elements=st.integers(0, 5)
    ),
    st.integers(0, 2),
)
def test_mode_of_refined_is_identity(a: np.ndarray, d: int) -> None:
    assert np.array_equal(coarsen(refine(a, d), d, method="mode", nodata=0), a)


@given(st.integers(0, 2), st.integers(1, 3), st.integers(1, 3))
def test_coarsen_then_refine_keeps_shape(d: int, by: int, bx: int) -> None:
    f = 1 << d
    a = np.random.default_rng(d).random((by * f, bx * f))
    back = refine(coarsen(a, d), d)
    assert back.shape == a.shape
    # the block mean is preserved
    assert np.allclose(coarsen(back, d), coarsen(a, d))


@given(
    st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 8), st.integers(0, 8)),
    st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 8), st.integers(0, 8)),
)
def test_crop_pad_round_trip(w: tuple[int, int, int, int], t: tuple[int, int, int, int]) -> None:
    src = (w[0], w[1], w[0] + w[2], w[1] + w[3])
    dst = (t[0], t[1], t[0] + t[2], t[1] + t[3])
    a = np.random.default_rng(0).random(window_shape(src))
    out = crop_pad(a, src, dst)
    back = crop_pad(out, dst, src)
    # every pixel inside both windows survives the round trip, the rest is NaN
    finite = np.isfinite(back)
    assert np.array_equal(back[finite], a[finite])
    ix = max(0, min(src[2], dst[2]) - max(src[0], dst[0]) + 1)
    iy = max(0, min(src[3], dst[3]) - max(src[1], dst[1]) + 1)
    assert finite.sum() == ix * iy
