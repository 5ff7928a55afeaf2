"""Scene matching in space and time, and nearest weather steps (made-up scene records)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gravitas.kernels.datacube import SceneRecord, match_scenes, nearest_steps
from gravitas.kernels.datacube.errors import BadParameterError, NoPairsError
from gravitas.schemas.errors import KernelError

T0 = datetime(2017, 2, 16, 10, 21, tzinfo=UTC)


def scene(sid: str, bbox: tuple[float, float, float, float], hours: float) -> SceneRecord:
    return SceneRecord(sid, bbox, T0 + timedelta(hours=hours))


def test_nearest_overlapping_scene_in_time() -> None:
    s2 = [scene("s2-a", (0, 0, 2, 2), 0), scene("s2-b", (10, 10, 11, 11), 0)]
    l8 = [
        scene("l8-far", (0, 0, 2, 2), 30),  # outside the 24 h tolerance
        scene("l8-late", (1, 1, 3, 3), 5),
        scene("l8-early", (1, 0, 3, 2), -2),  # nearest in time and overlaps half
        scene("l8-elsewhere", (20, 20, 21, 21), 0),  # nearest but no overlap
    ]
    pairs = match_scenes({"s2": s2, "l8": l8}, "s2", tolerance_s=86400)
    assert len(pairs) == 1  # s2-b has no overlapping l8 scene
    pair = pairs[0]
    assert pair.reference.id == "s2-a"
    m = pair.matches["l8"]
    assert m.scene.id == "l8-early"
    assert m.dt_s == -7200.0
    assert m.overlap == pytest.approx(0.5)
    assert pair.bbox == (1, 0, 2, 2)
    assert pair.overlap == pytest.approx(0.5)
    assert pair.max_abs_dt_s == 7200.0
    assert list(pair.scenes()) == ["s2", "l8"]


def test_joint_overlap_of_three_modalities() -> None:
    ref = [scene("r", (0, 0, 4, 4), 0)]
    a = [scene("a", (0, 0, 2, 4), 1)]  # left half
    b = [scene("b", (0, 0, 4, 2), -1)]  # bottom half
    (pair,) = match_scenes({"r": ref, "a": a, "b": b}, "r", {"a": 3600, "b": 3600})
    assert pair.matches["a"].overlap == pytest.approx(0.5)
    assert pair.matches["b"].overlap == pytest.approx(0.5)
    assert pair.bbox == (0, 0, 2, 2)
    assert pair.overlap == pytest.approx(0.25)


def test_require_all_false_keeps_partial_pairs() -> None:
    ref = [scene("r1", (0, 0, 1, 1), 0), scene("r2", (0, 0, 1, 1), 100)]
    other = [scene("o", (0, 0, 1, 1), 1)]
    strict = match_scenes({"r": ref, "o": other}, "r", 7200)
    loose = match_scenes({"r": ref, "o": other}, "r", 7200, require_all=False)
    assert [p.reference.id for p in strict] == ["r1"]
    assert [p.reference.id for p in loose] == ["r1", "r2"]
    assert loose[1].matches == {} and loose[1].overlap == 1.0


def test_time_ties_prefer_larger_overlap() -> None:
    ref = [scene("r", (0, 0, 2, 2), 0)]
    other = [scene("small", (1.5, 1.5, 3, 3), 1), scene("big", (0, 0, 1, 2), -1)]
    (pair,) = match_scenes({"r": ref, "o": other}, "r", 7200)
    assert pair.matches["o"].scene.id == "big"


def test_naive_datetime_is_utc() -> None:
    ref = [SceneRecord("r", (0, 0, 1, 1), datetime(2020, 1, 1, 12))]
    other = [SceneRecord("o", (0, 0, 1, 1), datetime(2020, 1, 1, 13, tzinfo=UTC))]
    (pair,) = match_scenes({"r": ref, "o": other}, "r", 3600)
    assert pair.matches["o"].dt_s == 3600.0


def test_no_pairs_is_a_clear_error() -> None:
    ref = [scene("r", (0, 0, 1, 1), 0)]
    other = [scene("o", (5, 5, 6, 6), 0)]
    with pytest.raises(NoPairsError, match="widen time_tolerance_s") as err:
        match_scenes({"r": ref, "o": other}, "r")
    assert isinstance(err.value, KernelError)
    with pytest.raises(NoPairsError, match="no scenes"):
        match_scenes({"r": [], "o": other}, "r")


def test_bad_inputs() -> None:
    with pytest.raises(BadParameterError, match="antimeridian"):
        scene("x", (170, 0, -170, 1), 0)
    with pytest.raises(BadParameterError, match="reference modality 'z'"):
        match_scenes({"r": [scene("r", (0, 0, 1, 1), 0)]}, "z")
    with pytest.raises(BadParameterError, match="no time tolerance for modality 'o'"):
        match_scenes({"r": [scene("r", (0, 0, 1, 1), 0)], "o": []}, "r", {"x": 1.0})


boxes = st.tuples(st.floats(-10, 10), st.floats(-10, 10), st.floats(0.1, 5), st.floats(0.1, 5)).map(
    lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[3])
)


@given(
    st.lists(st.tuples(boxes, st.floats(-48, 48)), min_size=1, max_size=6),
    st.lists(st.tuples(boxes, st.floats(-48, 48)), min_size=1, max_size=6),
    st.floats(0, 86400),
)
def test_matches_are_nearest_overlapping_within_tolerance(
    refs: list[tuple[tuple[float, float, float, float], float]],
    others: list[tuple[tuple[float, float, float, float], float]],
    tol: float,
) -> None:
    r = [scene(f"r{i}", b, h) for i, (b, h) in enumerate(refs)]
    o = [scene(f"o{i}", b, h) for i, (b, h) in enumerate(others)]
    try:
        pairs = match_scenes({"r": r, "o": o}, "r", tol)
    except NoPairsError:
        pairs = []
    for pair in pairs:
        m = pair.matches["o"]
        assert abs(m.dt_s) <= tol
        assert 0 < m.overlap <= 1 + 1e-12
        assert pair.overlap == pytest.approx(m.overlap)
        # no other overlapping scene within tolerance is strictly nearer in time
        for cand in o:
            dt = (cand.datetime - pair.reference.datetime).total_seconds()
            w = max(cand.bbox[0], pair.reference.bbox[0])
            e = min(cand.bbox[2], pair.reference.bbox[2])
            s = max(cand.bbox[1], pair.reference.bbox[1])
            n = min(cand.bbox[3], pair.reference.bbox[3])
            if e > w and n > s and abs(dt) <= tol:
                assert abs(m.dt_s) <= abs(dt) + 1e-6
    assert len(pairs) <= len(r)


def test_nearest_weather_step() -> None:
    steps = [T0 + timedelta(hours=h) for h in (0, 6, 12, 18)]
    overpasses = [T0 + timedelta(hours=h) for h in (1, 3, 11, 40, -1)]
    idx, off = nearest_steps(overpasses, steps)
    assert idx.tolist() == [0, 0, 2, 3, 0]  # 3 h is a tie between 0 h and 6 h -> earlier
    assert (off / 3600).tolist() == [-1, -3, 1, -22, 1]
    idx, _ = nearest_steps(overpasses, steps, tolerance_s=3 * 3600)
    assert idx.tolist() == [0, 0, 2, -1, 0]


@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20),
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20),
)
def test_nearest_steps_is_a_true_minimum(over: list[float], steps: list[float]) -> None:
    idx, off = nearest_steps(np.array(over), np.array(steps))
    s = np.array(steps)
    for t, i, o in zip(over, idx, off, strict=True):
        assert abs(s[i] - t) == np.min(np.abs(s - t))
        assert o == s[i] - t
