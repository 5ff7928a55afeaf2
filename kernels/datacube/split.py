"""Class-balanced sampling and stratified, seeded train / val / test splits.

Every function takes 1-D integer labels (one per patch) and returns sample indices;
the same seed always gives the same result. With ``groups`` (a coarse grid cell per
patch, see :func:`spatial_groups`) whole groups go to one split, so neighbouring
patches never straddle train and test ("no spatial leakage").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gravitas.kernels.datacube.errors import BadParameterError, ShapeMismatchError, SplitRatioError
from gravitas.schemas.events import SplitRatios

__all__ = [
    "SPLITS",
    "SplitResult",
    "balance_classes",
    "check_ratios",
    "group_split",
    "spatial_groups",
    "stratified_split",
]

SPLITS = ("train", "val", "test")
IntArray = NDArray[np.int64]
Ratios: TypeAlias = SplitRatios | tuple[float, float, float] | Mapping[str, float]


@dataclass(frozen=True)
class SplitResult:
    """Which split each sample went to, with counts for the DatacubeReady event."""

    assignment: IntArray
    """(n,) 0 = train, 1 = val, 2 = test, -1 = not used."""
    labels: IntArray
    """(n,) the labels the split was made on."""

    def indices(self, split: str) -> IntArray:
        """Sorted sample indices of ``split`` ('train', 'val' or 'test')."""
        return np.flatnonzero(self.assignment == SPLITS.index(split)).astype(np.int64)

    @property
    def train(self) -> IntArray:
        """Indices of the training samples."""
        return self.indices("train")

    @property
    def val(self) -> IntArray:
        """Indices of the validation samples."""
        return self.indices("val")

    @property
    def test(self) -> IntArray:
        """Indices of the test samples."""
        return self.indices("test")

    @property
    def counts(self) -> dict[str, int]:
        """Samples per split."""
        return {s: int(np.sum(self.assignment == i)) for i, s in enumerate(SPLITS)}

    @property
    def class_counts(self) -> dict[str, dict[str, int]]:
        """Samples per split and class (class ids as strings, as in DatacubeReady)."""
        out: dict[str, dict[str, int]] = {}
        for i, s in enumerate(SPLITS):
            cls, n = np.unique(self.labels[self.assignment == i], return_counts=True)
            out[s] = {str(int(c)): int(k) for c, k in zip(cls, n, strict=True)}
        return out


def check_ratios(ratios: Ratios) -> NDArray[np.float64]:
    """``(train, val, test)`` as an array; each >= 0 and the sum 1 (within 1e-6)."""
    vals: tuple[float, ...]
    if isinstance(ratios, SplitRatios):
        vals = (ratios.train, ratios.val, ratios.test)
    elif isinstance(ratios, Mapping):
        unknown: set[str] = set(ratios) - set(SPLITS)
        if unknown:
            raise SplitRatioError(f"unknown split names {sorted(unknown)}; use {SPLITS}")
        vals = tuple(float(ratios.get(s, 0.0)) for s in SPLITS)
    else:
        vals = tuple(float(v) for v in ratios)
    if len(vals) != 3:
        raise SplitRatioError(f"give 3 ratios (train, val, test), got {vals!r}")
    r = np.asarray(vals, dtype=np.float64)
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise SplitRatioError(f"split ratios must be finite and >= 0, got {vals!r}")
    if abs(r.sum() - 1.0) > 1e-6:
        raise SplitRatioError(
            f"split ratios must sum to 1, got train={r[0]:g} + val={r[1]:g} + "
            f"test={r[2]:g} = {r.sum():g}"
        )
    return r


def _labels(labels: ArrayLike) -> IntArray:
    lab = np.asarray(labels)
    if lab.ndim != 1 or (lab.size and lab.dtype.kind not in "iub"):
        raise ShapeMismatchError(
            f"labels must be a 1-D integer array, got shape {lab.shape} dtype {lab.dtype}"
        )
    return lab.astype(np.int64)


def balance_classes(
    labels: ArrayLike,
    *,
    mode: Literal["undersample", "cap"] = "undersample",
    cap: int | None = None,
    seed: int = 0,
    ignore: Collection[int] = (),
) -> IntArray:
    """Sorted indices of a class-balanced subset.

    ``undersample``: every class down to the size of the rarest class (the classes in
    ``ignore``, e.g. nodata, are dropped and do not count). ``cap``: at most ``cap``
    samples per class. Which samples survive is drawn with ``seed``.
    """
    lab = _labels(labels)
    if mode not in ("undersample", "cap"):
        raise BadParameterError(f"unknown balance mode {mode!r}; use 'undersample' or 'cap'")
    if mode == "cap" and (cap is None or cap < 1):
        raise BadParameterError(f"mode 'cap' needs cap >= 1 samples per class, got {cap}")
    use = ~np.isin(lab, np.asarray(list(ignore), dtype=np.int64))
    classes, counts = np.unique(lab[use], return_counts=True)
    if classes.size == 0:
        return np.empty(0, dtype=np.int64)
    limit = int(counts.min()) if mode == "undersample" else int(cap or 0)
    rng = np.random.default_rng(seed)
    keep = [
        rng.permutation(np.flatnonzero(use & (lab == c)))[:limit]
        for c in classes  # sorted, so the draw order is fixed
    ]
    return np.sort(np.concatenate(keep)).astype(np.int64)


def _apportion(n: int, r: NDArray[np.float64], deficit: NDArray[np.float64]) -> IntArray:
    """Split ``n`` items by ratios ``r`` (largest remainder), every positive split >= 1."""
    exact = n * r
    counts = np.floor(exact).astype(np.int64)
    rest = n - int(counts.sum())
    order = np.lexsort((-deficit, -(exact - counts)))  # largest remainder, then deficit
    counts[order[:rest]] += 1
    positive = np.flatnonzero(r > 0)
    if n >= positive.size:
        for s in positive:
            if counts[s] == 0:
                surplus = np.where(counts >= 2, counts - exact, -np.inf)
                donor = int(np.argmax(surplus))  # most above its share, keeps >= 1
                counts[donor] -= 1
                counts[s] += 1
    return counts


def stratified_split(
    labels: ArrayLike, ratios: Ratios = (0.7, 0.15, 0.15), *, seed: int = 0
) -> SplitResult:
    """Assign every sample to train / val / test, stratified by label.

    Per class, counts follow the ratios by largest remainder (within 1 of the exact
    share), and every split with a positive ratio gets at least one sample of each
    class that has enough samples. Ties between classes go to the split furthest
    below its overall share, so the totals stay close to the ratios too.
    """
    lab = _labels(labels)
    r = check_ratios(ratios)
    rng = np.random.default_rng(seed)
    assignment = np.full(lab.size, -1, dtype=np.int64)
    assigned = np.zeros(3)
    seen = 0
    for c in np.unique(lab):
        idx = rng.permutation(np.flatnonzero(lab == c))
        deficit = (seen + idx.size) * r - assigned
        counts = _apportion(idx.size, r, deficit)
        assignment[idx] = np.repeat(np.arange(3), counts)
        assigned += counts
        seen += idx.size
    return SplitResult(assignment, lab)


def spatial_groups(origins: ArrayLike, cell_size: int) -> IntArray:
    """Group id of each patch: the coarse ``cell_size`` px grid cell of its origin.

    Ids are numbered 0.. in row-major order of the occupied cells.
    """
    if cell_size < 1:
        raise BadParameterError(f"cell_size must be >= 1 pixel, got {cell_size}")
    o = np.asarray(origins, dtype=np.int64).reshape(-1, 2)
    cells = o // cell_size
    if cells.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    _, ids = np.unique(cells, axis=0, return_inverse=True)
    return ids.ravel().astype(np.int64)


def group_split(
    labels: ArrayLike,
    groups: ArrayLike,
    ratios: Ratios = (0.7, 0.15, 0.15),
    *,
    seed: int = 0,
) -> SplitResult:
    """Split whole groups, stratified on each group's majority class as far as possible.

    Groups are stratified by majority label (ties to the smallest class); inside a
    stratum, groups (shuffled with ``seed``, then largest first) go to the split
    furthest below its share of samples. Every split with a positive ratio gets a group
    of the stratum when the stratum has enough groups.
    """
    lab = _labels(labels)
    grp = np.asarray(groups)
    if grp.shape != lab.shape or (grp.size and grp.dtype.kind not in "iu"):
        raise ShapeMismatchError(
            f"groups must be integer ids of the same shape as labels {lab.shape}, "
            f"got shape {grp.shape} dtype {grp.dtype}"
        )
    r = check_ratios(ratios)
    rng = np.random.default_rng(seed)
    gids, ginv = np.unique(grp.astype(np.int64), return_inverse=True)
    ginv = ginv.ravel()
    classes, cinv = np.unique(lab, return_inverse=True)
    table = np.zeros((gids.size, classes.size), dtype=np.int64)
    np.add.at(table, (ginv, cinv.ravel()), 1)
    size = table.sum(axis=1)
    majority = np.argmax(table, axis=1)
    split_of_group = np.full(gids.size, -1, dtype=np.int64)
    positive = np.flatnonzero(r > 0)
    for m in range(classes.size):
        members = rng.permutation(np.flatnonzero(majority == m))
        members = members[np.argsort(-size[members], kind="stable")]
        target = size[members].sum() * r
        got = np.zeros(3)
        for g in members:
            s = int(np.argmax(np.where(r > 0, target - got, -np.inf)))
            split_of_group[g] = s
            got[s] += size[g]
        if members.size >= positive.size:
            for s in positive:
                have = members[split_of_group[members] == s]
                if have.size:
                    continue
                counts = np.array([np.sum(split_of_group[members] == k) for k in range(3)])
                donor = int(np.argmax(counts))
                pool = members[split_of_group[members] == donor]
                smallest = pool[np.argmin(size[pool])]
                split_of_group[smallest] = s
    return SplitResult(split_of_group[ginv], lab)
