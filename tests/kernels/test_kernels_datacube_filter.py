"""Filtering matched pairs by overlap, nodata, cloud and properties (made-up records)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gravitas.kernels.datacube import (
    ScenePair,
    SceneRecord,
    check_properties,
    filter_pairs,
    match_scenes,
)
from gravitas.kernels.datacube.errors import BadParameterError

T = datetime(2020, 6, 1, tzinfo=UTC)


def pair(
    ref_bbox: tuple[float, float, float, float] = (0, 0, 1, 1),
    ref_props: dict[str, Any] | None = None,
    other_props: dict[str, Any] | None = None,
) -> ScenePair:
    r = SceneRecord("r", ref_bbox, T, ref_props or {})
    o = SceneRecord("o", (0, 0, 1, 1), T, other_props or {})
    (p,) = match_scenes({"s2": [r], "era5": [o]}, "s2")
    return p


def test_each_reason_is_counted_once() -> None:
    pairs = [
        pair(),  # kept
        pair(ref_bbox=(0, 0, 0.1, 1)),  # 0.1 deg wide < 224 px * 0.001 deg
        pair(ref_props={"nodata_fraction": 0.9, "eo:cloud_cover": 90}),  # nodata first
        pair(ref_props={"eo:cloud_cover": 35}),
        pair(ref_props={"eo:cloud_cover": 5}, other_props={"product": "forecast"}),
        pair(other_props={"product": "reanalysis"}),  # kept
    ]
    kept, report = filter_pairs(
        pairs,
        pixel_size_deg=0.001,
        patch_size=224,
        max_nodata_fraction=0.5,
        max_cloud_cover={"s2": 20.0},
        where={"era5": {"product": "reanalysis"}},
    )
    # pairs[0] has no era5 product: a property filter on a missing property fails
    assert kept == [pairs[5]]
    assert report.kept == 1
    assert report.dropped == {
        "overlap smaller than one patch (0.224 deg square)": 1,
        "s2: nodata_fraction above 0.5": 1,
        "s2: eo:cloud_cover above 20": 1,
        "era5: property product missing": 1,
        "era5: property product == 'reanalysis' failed": 1,
    }
    assert report.total_dropped == 5
    assert "kept 1, dropped 5" in str(report)


def test_missing_threshold_property_passes() -> None:
    kept, report = filter_pairs([pair()], pixel_size_deg=0.001, max_cloud_cover=10)
    assert len(kept) == 1 and report.dropped == {}


def test_exact_patch_overlap_is_enough() -> None:
    kept, _ = filter_pairs([pair(ref_bbox=(0, 0, 0.224, 0.224))], pixel_size_deg=0.001)
    assert len(kept) == 1


def test_check_properties_ops() -> None:
    props = {"platform": "sentinel-2a", "view:off_nadir": 4.0, "tile": "33UUU"}
    assert check_properties(props, {"platform": "sentinel-2a"}) is None
    assert check_properties(props, {"view:off_nadir": {">=": 0, "<": 10}}) is None
    assert check_properties(props, {"tile": {"in": ["33UUU", "33UUT"]}}) is None
    assert check_properties(props, {"tile": {"not in": ["33UUU"]}}) is not None
    assert check_properties(props, {"view:off_nadir": {">": 5}}) == (
        "property view:off_nadir > 5 failed"
    )
    assert check_properties(props, {"platform": {"<": 3}}) is not None  # str < int
    with pytest.raises(BadParameterError, match="unknown comparison '~'"):
        check_properties(props, {"platform": {"~": "x"}})


def test_bad_parameters() -> None:
    with pytest.raises(BadParameterError, match="pixel_size_deg must be > 0"):
        filter_pairs([pair()], pixel_size_deg=0)
    with pytest.raises(BadParameterError, match="patch_size"):
        filter_pairs([pair()], pixel_size_deg=0.1, patch_size=0)


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 100)), max_size=15), st.floats(0, 100))
def test_kept_plus_dropped_is_all_and_thresholds_hold(
    props: list[tuple[float, float]], max_cloud: float
) -> None:
    pairs = [pair(ref_props={"nodata_fraction": n, "eo:cloud_cover": c}) for n, c in props]
    kept, report = filter_pairs(
        pairs, pixel_size_deg=0.001, max_nodata_fraction=0.5, max_cloud_cover=max_cloud
    )
    assert report.kept == len(kept)
    assert report.kept + report.total_dropped == len(pairs)
    for p in kept:
        assert p.reference.properties["nodata_fraction"] <= 0.5
        assert p.reference.properties["eo:cloud_cover"] <= max_cloud
