"""The datacube steps chained on a made-up two-modality cube, as the harmonize agent will."""

from __future__ import annotations

import numpy as np

from gravitas.kernels.datacube import (
    aggregate_time,
    balance_classes,
    band_statistics,
    coarsen,
    extract_patches,
    gap_fill,
    group_split,
    label_patches,
    refine,
    spatial_groups,
)


def test_steps_compose_into_split_patches() -> None:
    rng = np.random.default_rng(7)
    optical = rng.random((6, 2, 64, 64)).astype(np.float32)  # (t, band, y, x) at level l
    optical[rng.random(optical.shape) < 0.2] = np.nan  # clouds / nodata
    optical[2:4, :, :16, :16] = np.nan  # a gap over two steps
    weather = rng.random((6, 1, 16, 16))  # two levels coarser
    labels = refine(rng.integers(1, 4, size=(8, 8)), 3).astype(np.int64)  # (64, 64)

    filled, mask = gap_fill(optical)
    assert np.isfinite(filled).all() and mask.sum() == np.isnan(optical).sum()
    daily, days = aggregate_time(filled, np.array([0, 0, 1, 1, 2, 2]), "mean")
    assert daily.shape == (3, 2, 64, 64) and days.tolist() == [0, 1, 2]
    w_daily, _ = aggregate_time(refine(weather, 2), np.array([0, 0, 1, 1, 2, 2]), "max")
    cube = np.concatenate([daily, w_daily.astype(np.float32)], axis=1)  # (3, 3, 64, 64)
    assert np.allclose(coarsen(w_daily, 2), np.max(weather.reshape(3, 2, 1, 16, 16), axis=1))

    stats = band_statistics(cube)
    assert stats.count.tolist() == [3 * 64 * 64] * 3

    patches = extract_patches(cube, 16, stride=8, min_valid_fraction=1.0)
    assert len(patches.origins) == 49 and patches.data.shape == (49, 3, 3, 16, 16)
    majority, tiles = label_patches(labels, patches.origins, 16)
    assert tiles.shape == (49, 16, 16) and set(majority.tolist()) <= {1, 2, 3}

    keep = balance_classes(majority, seed=1)
    counts = np.bincount(majority[keep])[1:]
    assert (counts == counts[0]).all()
    groups = spatial_groups(patches.origins[keep], 32)
    split = group_split(majority[keep], groups, (0.6, 0.2, 0.2), seed=1)
    assert sum(split.counts.values()) == keep.size
    for g in np.unique(groups):
        assert np.unique(split.assignment[groups == g]).size == 1
