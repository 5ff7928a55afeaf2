"""Class balancing, stratified and spatial (group) splits (made-up labels)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gravitas.kernels.datacube import (
    balance_classes,
    group_split,
    patch_origins,
    spatial_groups,
    stratified_split,
)
from gravitas.kernels.datacube.errors import BadParameterError, ShapeMismatchError, SplitRatioError
from gravitas.schemas.events import SplitRatios

RATIOS = (0.7, 0.15, 0.15)


def test_undersample_to_rarest_and_cap() -> None:
    labels = np.array([0] * 10 + [1] * 3 + [2] * 6 + [9] * 1)
    idx = balance_classes(labels, ignore=[9])
    assert np.bincount(labels[idx]).tolist()[:3] == [3, 3, 3]
    assert 9 not in labels[idx]
    assert np.array_equal(idx, balance_classes(labels, ignore=[9]))  # same seed, same pick
    capped = balance_classes(labels, mode="cap", cap=4)
    assert np.bincount(labels[capped]).tolist() == [4, 3, 4, 0, 0, 0, 0, 0, 0, 1]
    assert np.all(np.diff(capped) > 0)
    with pytest.raises(BadParameterError, match="cap >= 1"):
        balance_classes(labels, mode="cap")
    assert balance_classes(np.array([], dtype=int)).size == 0


def test_stratified_split_by_hand() -> None:
    labels = np.repeat([0, 1, 2], [20, 10, 3])
    s = stratified_split(labels, RATIOS, seed=3)
    cc = s.class_counts
    assert cc["train"] == {"0": 14, "1": 7, "2": 1}
    assert cc["val"]["0"] == 3 and cc["test"]["0"] == 3
    assert cc["val"]["1"] + cc["test"]["1"] == 3
    assert cc["val"]["2"] == 1 and cc["test"]["2"] == 1  # 3 samples: one per split
    assert s.counts == {
        "train": 22,
        "val": sum(cc["val"].values()),
        "test": 33 - 22 - sum(cc["val"].values()),
    }
    assert sorted(np.concatenate([s.train, s.val, s.test]).tolist()) == list(range(33))
    same = stratified_split(labels, SplitRatios(train=0.7, val=0.15, test=0.15), seed=3)
    assert np.array_equal(s.assignment, same.assignment)
    other = stratified_split(labels, RATIOS, seed=4)
    assert not np.array_equal(s.assignment, other.assignment)


def test_ratio_errors() -> None:
    with pytest.raises(SplitRatioError, match="sum to 1"):
        stratified_split(np.zeros(5, dtype=int), (0.5, 0.3, 0.3))
    with pytest.raises(SplitRatioError, match=">= 0"):
        stratified_split(np.zeros(5, dtype=int), (1.2, -0.2, 0.0))
    with pytest.raises(SplitRatioError, match="unknown split names"):
        stratified_split(np.zeros(5, dtype=int), {"train": 1.0, "holdout": 0.0})
    with pytest.raises(ShapeMismatchError, match="1-D integer"):
        stratified_split(np.zeros(5), RATIOS)


def test_zero_ratio_split_stays_empty() -> None:
    s = stratified_split(np.repeat([0, 1], [7, 5]), {"train": 0.8, "test": 0.2})
    assert s.counts["val"] == 0 and s.counts["test"] >= 2


label_lists = st.lists(st.integers(0, 4), min_size=0, max_size=120)
ratio_sets = st.sampled_from([(0.7, 0.15, 0.15), (0.8, 0.1, 0.1), (0.6, 0.2, 0.2), (0.5, 0.5, 0.0)])


@settings(max_examples=80, deadline=None)
@given(label_lists, ratio_sets, st.integers(0, 2**31))
def test_stratified_split_properties(
    labels: list[int], ratios: tuple[float, float, float], seed: int
) -> None:
    lab = np.array(labels, dtype=np.int64)
    r = np.array(ratios)
    a = stratified_split(lab, ratios, seed=seed)
    b = stratified_split(lab, ratios, seed=seed)
    assert np.array_equal(a.assignment, b.assignment)  # deterministic
    parts = [a.train, a.val, a.test]
    joined = np.concatenate(parts)
    assert joined.size == lab.size and np.unique(joined).size == lab.size  # disjoint, cover
    k = int((r > 0).sum())
    for c in np.unique(lab):
        n = int((lab == c).sum())
        got = np.array([(lab[p] == c).sum() for p in parts])
        if np.all(n * r[r > 0] >= 1):
            assert np.all(np.abs(got - n * r) <= 1 + 1e-9)  # stratified within +-1
        if n >= k:
            assert np.all(got[r > 0] >= 1)  # every class in every used split
        assert np.all(got[r == 0] == 0)


def test_spatial_groups_and_group_split() -> None:
    origins = patch_origins(8, 8, 2)  # 16 patches
    groups = spatial_groups(origins, 4)  # 2 x 2 cells of 4 patches each
    assert np.bincount(groups).tolist() == [4, 4, 4, 4]
    assert groups.reshape(4, 4).tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    labels = np.zeros(16, dtype=int)
    s = group_split(labels, groups, (0.5, 0.25, 0.25), seed=1)
    assert sorted(s.counts.values()) == [4, 4, 8]
    for g in range(4):
        assert np.unique(s.assignment[groups == g]).size == 1  # whole groups only
    with pytest.raises(ShapeMismatchError, match="same shape as labels"):
        group_split(labels, groups[:3], RATIOS)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 2)), min_size=1, max_size=80),
    ratio_sets,
    st.integers(0, 1000),
)
def test_group_split_properties(
    samples: list[tuple[int, int]], ratios: tuple[float, float, float], seed: int
) -> None:
    groups = np.array([g for g, _ in samples], dtype=np.int64)
    labels = np.array([c for _, c in samples], dtype=np.int64)
    a = group_split(labels, groups, ratios, seed=seed)
    assert np.array_equal(a.assignment, group_split(labels, groups, ratios, seed=seed).assignment)
    assert np.all(a.assignment >= 0)  # covers every sample
    for g in np.unique(groups):
        assert np.unique(a.assignment[groups == g]).size == 1  # no group straddles splits
    r = np.array(ratios)
    names = ("train", "val", "test")
    assert all(a.counts[s] == 0 for s, x in zip(names, r, strict=True) if x == 0)
    # when there are at least as many groups as used splits, no used split is empty
    n_groups = np.unique(groups).size
    if n_groups >= 3 * int((r > 0).sum()):
        assert all(a.counts[s] > 0 for s, x in zip(names, r, strict=True) if x > 0)
