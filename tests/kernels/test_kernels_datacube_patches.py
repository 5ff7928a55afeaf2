"""Cutting patches, valid fractions and label majority (made-up cubes)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gravitas.kernels.datacube import (
    cut_patches,
    extract_patches,
    label_patches,
    patch_origins,
    valid_fractions,
)
from gravitas.kernels.datacube.errors import (
    BadParameterError,
    PatchTooLargeError,
    ShapeMismatchError,
)


def test_origins_without_and_with_overlap() -> None:
    assert patch_origins(4, 6, 2).tolist() == [
        [0, 0], [0, 2], [0, 4], [2, 0], [2, 2], [2, 4],
    ]  # fmt: skip
    assert patch_origins(3, 3, 2, stride=1).tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    # 5 px with 2 px patches: the last pixel is only covered with include_edge
    assert patch_origins(5, 2, 2)[:, 0].tolist() == [0, 2]
    assert patch_origins(5, 2, 2, include_edge=True)[:, 0].tolist() == [0, 2, 3]
    assert patch_origins(448, 448).shape == (4, 2)  # default 224 x 224


def test_patch_larger_than_area() -> None:
    with pytest.raises(PatchTooLargeError, match="larger than the area"):
        patch_origins(100, 300, 224)
    with pytest.raises(BadParameterError, match="stride"):
        patch_origins(10, 10, 2, stride=0)


def test_extract_drops_mostly_empty_patches() -> None:
    cube = np.ones((2, 3, 4, 4))  # (t, band, y, x)
    cube[0, 1, :2, :2] = np.nan  # top-left patch: fully invalid (one band, one time)
    cube[1, 0, 2, 2] = np.nan  # bottom-right patch: 3 of 4 valid
    ps = extract_patches(cube, 2, min_valid_fraction=0.75)
    assert ps.origins.tolist() == [[0, 2], [2, 0], [2, 2]]
    assert ps.index.tolist() == [1, 2, 3]
    assert ps.valid_fraction.tolist() == [1.0, 1.0, 0.75]
    assert ps.data.shape == (3, 2, 3, 2, 2)
    assert ps.rows.tolist() == [0, 2, 2] and ps.cols.tolist() == [2, 0, 2]
    strict = extract_patches(cube, 2, min_valid_fraction=1.0)
    assert strict.index.tolist() == [1, 2]


def test_cut_patches_copies_the_right_pixels() -> None:
    cube = np.arange(2 * 5 * 6).reshape(2, 5, 6)
    tiles = cut_patches(cube, [[1, 2], [3, 4]], 2)
    assert tiles.shape == (2, 2, 2, 2)
    assert np.array_equal(tiles[0], cube[:, 1:3, 2:4])
    assert np.array_equal(tiles[1], cube[:, 3:5, 4:6])
    with pytest.raises(ShapeMismatchError, match="outside the 5 x 6 area"):
        cut_patches(cube, [[4, 0]], 2)
    assert cut_patches(cube, np.empty((0, 2)), 2).shape == (0, 2, 2, 2)


def test_label_majority_and_tiles() -> None:
    labels = np.array(
        [
            [1, 1, 2, 2],
            [0, 2, 2, 0],
            [3, 3, 0, 0],
            [3, 0, 0, 0],
        ],
        dtype=np.uint8,
    )
    origins = patch_origins(4, 4, 2)
    majority, tiles = label_patches(labels, origins, 2, nodata=0)
    assert majority.tolist() == [1, 2, 3, 0]  # 0 = no labelled pixel
    assert tiles.shape == (4, 2, 2) and tiles[2].tolist() == [[3, 3], [3, 0]]
    tie = np.array([[5, 7], [7, 5]])
    assert label_patches(tie, [[0, 0]], 2)[0].tolist() == [5]  # tie -> smaller class
    with pytest.raises(ShapeMismatchError, match="2-D integer"):
        label_patches(labels.astype(float), origins, 2)


@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 4), st.integers(1, 4), st.booleans())
def test_origins_tile_or_cover_the_area(
    ny: int, nx: int, patch: int, extra: int, include_edge: bool
) -> None:
    h, w = ny * patch + (extra if include_edge else 0), nx * patch
    origins = patch_origins(h, w, patch, include_edge=include_edge)
    cover = np.zeros((h, w), dtype=int)
    for r, c in origins:
        cover[r : r + patch, c : c + patch] += 1
    if include_edge:
        assert (cover >= 1).all()  # every pixel is in some patch
    else:
        assert (cover == 1).all()  # exact tiling: each pixel in exactly one patch
        assert len(origins) == ny * nx


@given(st.integers(4, 12), st.integers(4, 12), st.integers(2, 4), st.integers(1, 3))
def test_valid_fraction_matches_direct_count(h: int, w: int, patch: int, stride: int) -> None:
    rng = np.random.default_rng(h * 100 + w)
    cube = np.where(rng.random((2, h, w)) < 0.3, np.nan, 1.0)
    origins = patch_origins(h, w, patch, stride)
    frac = valid_fractions(cube, origins, patch)
    valid = np.isfinite(cube).all(axis=0)
    for (r, c), f in zip(origins, frac, strict=True):
        assert f == valid[r : r + patch, c : c + patch].mean()
