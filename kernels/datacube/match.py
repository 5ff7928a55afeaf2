"""Match scenes of several modalities in space and time.

For every scene of the reference modality, take the scene of each other modality that
overlaps it (bbox intersection of positive area) and lies nearest in time, within that
modality's tolerance. Areas are planar in degrees (lon x lat), which is what the
overlap *fraction* needs for boxes of a few degrees; bboxes crossing the antimeridian
are not supported (split them first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gravitas.kernels.datacube.errors import BadParameterError, NoPairsError

__all__ = [
    "BBox",
    "Match",
    "ScenePair",
    "SceneRecord",
    "bbox_area",
    "bbox_intersection",
    "match_scenes",
    "nearest_steps",
    "to_epoch_seconds",
]

BBox = tuple[float, float, float, float]
"""``(west, south, east, north)`` in degrees."""


@dataclass(frozen=True)
class SceneRecord:
    """A scene as the matcher sees it: plain values, no STAC objects."""

    id: str
    bbox: BBox
    """``(west, south, east, north)`` in degrees, west <= east, south <= north."""
    datetime: datetime
    """Acquisition time; a naive datetime is taken as UTC."""
    properties: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    """Metadata such as ``eo:cloud_cover`` or ``nodata_fraction`` (used by the filter)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "bbox", check_bbox(self.bbox, what=f"scene {self.id!r}"))


@dataclass(frozen=True)
class Match:
    """The scene of one other modality matched to a reference scene."""

    modality: str
    scene: SceneRecord
    dt_s: float
    """``scene.datetime - reference.datetime`` in seconds (negative = earlier)."""
    overlap: float
    """Area of ``bbox(reference) & bbox(scene)`` / area of ``bbox(reference)``, in (0, 1]."""


@dataclass(frozen=True)
class ScenePair:
    """A reference scene and its nearest match in every other modality."""

    reference_modality: str
    reference: SceneRecord
    matches: Mapping[str, Match] = field(hash=False)
    """By modality name (the reference modality is not in it)."""
    bbox: BBox
    """Intersection of the reference bbox and every matched bbox."""
    overlap: float
    """Area of :attr:`bbox` / area of the reference bbox (1.0 with no matches)."""

    def scenes(self) -> dict[str, SceneRecord]:
        """Every scene of the pair by modality name, the reference first."""
        out = {self.reference_modality: self.reference}
        out.update({name: m.scene for name, m in self.matches.items()})
        return out

    @property
    def max_abs_dt_s(self) -> float:
        """Largest time offset (seconds, absolute) of any match; 0 with no matches."""
        return max((abs(m.dt_s) for m in self.matches.values()), default=0.0)


def check_bbox(bbox: Sequence[float], *, what: str = "bbox") -> BBox:
    """Validate ``(west, south, east, north)`` and return it as a tuple of floats."""
    if len(bbox) != 4:
        raise BadParameterError(f"{what}: bbox needs 4 numbers (w, s, e, n), got {bbox!r}")
    w, s, e, n = (float(v) for v in bbox)
    if not all(np.isfinite((w, s, e, n))):
        raise BadParameterError(f"{what}: bbox has non-finite values {bbox!r}")
    if w > e or s > n:
        raise BadParameterError(
            f"{what}: bbox {bbox!r} has west > east or south > north; split bboxes that "
            "cross the antimeridian into two scenes"
        )
    return (w, s, e, n)


def bbox_area(bbox: BBox) -> float:
    """Planar area in square degrees."""
    return max(bbox[2] - bbox[0], 0.0) * max(bbox[3] - bbox[1], 0.0)


def bbox_intersection(a: BBox, b: BBox) -> BBox | None:
    """The intersection box, or None when the boxes share no area."""
    w, s = max(a[0], b[0]), max(a[1], b[1])
    e, n = min(a[2], b[2]), min(a[3], b[3])
    if e <= w or n <= s:
        return None
    return (w, s, e, n)


def _epoch(dt: datetime) -> float:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def to_epoch_seconds(values: Sequence[datetime] | NDArray[Any]) -> NDArray[np.float64]:
    """Seconds since 1970 (UTC) of datetimes, ``datetime64`` or numbers (taken as-is)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[ns]").astype(np.int64).astype(np.float64) / 1e9
    if arr.dtype.kind == "O":
        return np.array([_epoch(v) for v in arr.ravel()], dtype=np.float64).reshape(arr.shape)
    if arr.dtype.kind in "iuf":
        return arr.astype(np.float64)
    raise BadParameterError(f"times must be datetimes, datetime64 or seconds, got {arr.dtype}")


def _tolerance(tolerance_s: float | Mapping[str, float], name: str) -> float:
    if isinstance(tolerance_s, Mapping):
        if name not in tolerance_s:
            raise BadParameterError(
                f"no time tolerance for modality {name!r}; add it to tolerance_s "
                f"(given for {sorted(tolerance_s)!r})"
            )
        tol = tolerance_s[name]
    else:
        tol = tolerance_s
    if not tol >= 0:
        raise BadParameterError(f"time tolerance for {name!r} must be >= 0 s, got {tol}")
    return float(tol)


class _Candidates:
    """One modality's scenes as arrays, for vectorised nearest-in-time look-ups."""

    def __init__(self, scenes: Sequence[SceneRecord]) -> None:
        self.scenes = list(scenes)
        self.t = np.array([_epoch(s.datetime) for s in self.scenes], dtype=np.float64)
        self.box = np.array([s.bbox for s in self.scenes], dtype=np.float64).reshape(-1, 4)

    def nearest(
        self, ref: SceneRecord, t_ref: float, tol: float
    ) -> tuple[SceneRecord, float, float] | None:
        """(scene, dt_s, intersection area) of the best candidate, or None."""
        if not self.scenes:
            return None
        w = np.maximum(self.box[:, 0], ref.bbox[0])
        s = np.maximum(self.box[:, 1], ref.bbox[1])
        e = np.minimum(self.box[:, 2], ref.bbox[2])
        n = np.minimum(self.box[:, 3], ref.bbox[3])
        inter = np.clip(e - w, 0.0, None) * np.clip(n - s, 0.0, None)
        dt = self.t - t_ref
        ok = (inter > 0) & (np.abs(dt) <= tol)
        if not ok.any():
            return None
        idx = np.flatnonzero(ok)
        # nearest in time; ties -> larger overlap -> earlier scene -> input order
        order = np.lexsort((idx, dt[idx], -inter[idx], np.abs(dt[idx])))
        best = int(idx[order[0]])
        return self.scenes[best], float(dt[best]), float(inter[best])


def match_scenes(
    scenes: Mapping[str, Sequence[SceneRecord]],
    reference: str,
    tolerance_s: float | Mapping[str, float] = 86400.0,
    *,
    require_all: bool = True,
) -> list[ScenePair]:
    """Pair each reference scene with the nearest overlapping scene of every other modality.

    ``tolerance_s`` is one number or one per modality (``Modality.time_tolerance_s``).
    With ``require_all`` a reference scene missing any modality is left out; otherwise
    its pair simply lacks that modality. Pairs come in reference time order. Raises
    :class:`NoPairsError` when nothing matches (empty space-time intersection).
    """
    if reference not in scenes:
        raise BadParameterError(
            f"reference modality {reference!r} is not among the modalities {sorted(scenes)!r}"
        )
    if not scenes[reference]:
        raise NoPairsError(f"reference modality {reference!r} has no scenes")
    others = {name: _Candidates(s) for name, s in scenes.items() if name != reference}
    tols = {name: _tolerance(tolerance_s, name) for name in others}
    refs = sorted(scenes[reference], key=lambda s: (_epoch(s.datetime), s.id))
    pairs: list[ScenePair] = []
    for ref in refs:
        ref_area = bbox_area(ref.bbox)
        if ref_area <= 0:
            continue
        t_ref = _epoch(ref.datetime)
        matches: dict[str, Match] = {}
        for name, cands in others.items():
            found = cands.nearest(ref, t_ref, tols[name])
            if found is not None:
                scene, dt_s, inter = found
                matches[name] = Match(name, scene, dt_s, inter / ref_area)
        if require_all and len(matches) < len(others):
            continue
        common: BBox | None = ref.bbox
        for m in matches.values():
            common = bbox_intersection(common, m.scene.bbox) if common else None
        if common is None:
            continue
        pairs.append(ScenePair(reference, ref, matches, common, bbox_area(common) / ref_area))
    if not pairs:
        counts = {name: len(s) for name, s in scenes.items()}
        raise NoPairsError(
            f"no {reference!r} scene overlaps a scene of every other modality within the "
            f"time tolerance (scenes per modality: {counts}, tolerance_s: {tolerance_s}); "
            "widen time_tolerance_s, the bbox or the time range"
        )
    return pairs


def nearest_steps(
    overpasses: Sequence[datetime] | NDArray[Any],
    steps: Sequence[datetime] | NDArray[Any],
    tolerance_s: float | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Index of the nearest weather step to each overpass, and the offset in seconds.

    Offsets are ``step - overpass``. Ties go to the earlier step. With ``tolerance_s``
    an overpass farther than that from every step gets index -1 (offset kept).
    """
    t = to_epoch_seconds(overpasses).ravel()
    s = to_epoch_seconds(steps).ravel()
    if s.size == 0:
        raise BadParameterError("no weather steps given to match overpasses against")
    order = np.argsort(s, kind="stable")
    ss = s[order]
    right = np.clip(np.searchsorted(ss, t, side="left"), 0, ss.size - 1)
    left = np.clip(right - 1, 0, ss.size - 1)
    take_left = np.abs(ss[left] - t) <= np.abs(ss[right] - t)
    pos = np.where(take_left, left, right)
    idx = order[pos].astype(np.int64)
    offset = ss[pos] - t
    if tolerance_s is not None:
        idx = np.where(np.abs(offset) <= tolerance_s, idx, -1)
    return idx, offset
