"""Event models: envelope, validation messages, orjson round trips, JSON Schema export."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from gravitas.schemas import events as ev
from gravitas.schemas.codec import decode, encode
from gravitas.schemas.errors import EventDecodeError, EventValidationError

T0 = datetime(2017, 2, 16, 10, 21, tzinfo=UTC)
T1 = datetime(2017, 2, 17, tzinfo=UTC)


def examples() -> list[ev.Event]:
    tr = ev.TimeRange(start=T0, end=T1)
    bbox = (13.0, 52.3, 13.5, 52.6)
    return [
        ev.SceneAnnounced(
            scene_id="s2-1",
            collection="sentinel-2-l1c",
            hrefs=["/data/b04.jp2"],
            bbox=bbox,
            datetime=T0,
            crs="EPSG:32633",
        ),
        ev.OnboardRequested(scene_id="s2-1", collection="c", item_id="s2-1", requested_by="req-1"),
        ev.OnboardingDone(scene_id="s2-1", collection="c", item_id="s2-1", requested_by="req-1"),
        ev.OnboardingFailed(
            scene_id="s2-1",
            collection="c",
            item_id="s2-1",
            requested_by="req-1",
            error_class="ObjectNotFoundError",
            cause="ObjectNotFoundError: gone",
        ),
        ev.RequestParked(
            request_id="req-1",
            topic="requests.discovery",
            request={"type": "x"},
            waiting=[ev.ParkedItem(collection="c", item_id="s2-1")],
        ),
        ev.BlocksIndexed(
            partition_key="b04/17/12",
            scene_id="s2-1",
            layer="s2_b04",
            level=17,
            timestamp=T0,
            mortons=[1, 2],
            valid_pixels=10,
        ),
        ev.OverviewsUpdated(
            layer="s2_b04", timestamp=T0, base_level=17, top_level=5, blocks_updated=3
        ),
        ev.Progress(request_id="r1", stage="retrieve", fraction=0.5),
        ev.MethaneRequested(request_id="m1", scene_id="emit-1", href="/data/emit.nc"),
        ev.MethaneEnhanced(
            request_id="m1",
            scene_id="emit-1",
            cog_href="s3://b/ch4.tif",
            item_id="i",
            background_mean_ppm_m=1.0,
            max_ppm_m=2000,
            plume_count=1,
        ),
        ev.PlumeDetected(
            request_id="m1",
            scene_id="emit-1",
            plume_id="p1",
            geometry={"type": "Polygon", "coordinates": []},
            max_ppm_m=1,
            mean_ppm_m=1,
            area_m2=1,
            ime_kg=1,
        ),
        ev.DatacubeRequested(
            request_id="d1",
            modalities=[ev.Modality(name="s2", layers=["s2_b04"])],
            bbox=bbox,
            time=tr,
            level=17,
        ),
        ev.DatacubeReady(request_id="d1", collection_id="dc-d1"),
        ev.PixelSearch(
            request_id="q1",
            layer="rain",
            predicate=ev.Predicate(op=">", value=50),
            bbox=bbox,
            time=tr,
        ),
        ev.Featurize(
            request_id="f1", layers={"r": "s2_b04"}, expression="r * 2", bbox=bbox, time=tr
        ),
        ev.SearchResult(request_id="q1"),
        ev.FeatureResult(request_id="f1"),
        ev.ItemRegistered(
            item_id="i1",
            collection="c",
            item={"type": "Feature", "id": "i1"},
            owning_node="a",
            api_url="http://127.0.0.1:1",
        ),
        ev.ItemRetracted(item_id="i1", collection="c", owning_node="a"),
        ev.OpenEOJobRequested(
            job_id="j-0123456789abcdef",
            run_id="r-0123456789abcdef",
            user="alice",
            process_graph={"a": {"process_id": "absolute", "arguments": {"x": 1}, "result": True}},
        ),
        ev.OpenEOJobUpdate(
            job_id="j-0123456789abcdef", run_id="r-0123456789abcdef", status="running", progress=0.5
        ),
        ev.Ping(request_id="p"),
        ev.Pong(request_id="p", ping_id="00000000-0000-0000-0000-000000000000"),
        ev.Rejected.for_payload(b"\xff", source_topic="t", error_class="X", reason="y"),
    ]


def test_every_event_class_has_an_example() -> None:
    assert {type(e) for e in examples()} == set(ev.ALL_EVENTS)


@pytest.mark.parametrize("event", examples(), ids=lambda e: type(e).__name__)
def test_round_trip_and_envelope(event: ev.Event) -> None:
    data = json.loads(encode(event))
    for field in ("event_id", "occurred_at", "node_id", "schema_version", "type"):
        assert field in data
    assert decode(encode(event), [type(event)]) == event


def _message(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return str(exc.value)


@pytest.mark.parametrize(
    ("bbox", "fragment"),
    [
        ((10, 50, 5, 55), "west must be < east, got west=10.0, east=5.0"),
        ((10, 95, 11, 96), "latitudes must be in [-90, 90], got south=95.0"),
        ((-200, 0, 1, 1), "longitudes must be in [-180, 180], got west=-200.0"),
    ],
)
def test_bbox_errors_name_the_value(bbox: tuple[float, ...], fragment: str) -> None:
    with pytest.raises(ValidationError) as exc:
        ev.SceneAnnounced(scene_id="s", collection="c", hrefs=["/x"], bbox=bbox)
    assert fragment in _message(exc) and "bbox" in _message(exc)


def test_time_range_crs_and_href_errors_name_the_value() -> None:
    with pytest.raises(ValidationError) as exc:
        ev.TimeRange(start=T1, end=T0)
    assert "is after end" in _message(exc)
    with pytest.raises(ValidationError) as exc:
        ev.SceneAnnounced(scene_id="s", collection="c", hrefs=["/x"], crs="EPSG:99999999")
    assert "EPSG:99999999" in _message(exc) and "crs" in _message(exc)
    with pytest.raises(ValidationError) as exc:
        ev.SceneAnnounced(scene_id="s", collection="c", hrefs=["ftp://host/x.tif"])
    assert "ftp://host/x.tif" in _message(exc) and "scheme 'ftp'" in _message(exc)
    with pytest.raises(ValidationError) as exc:
        ev.SceneAnnounced(scene_id="s", collection="c", hrefs=["file:///data/../etc/passwd"])
    assert "'..'" in _message(exc)
    with pytest.raises(ValidationError) as exc:
        ev.SceneAnnounced(scene_id="s", collection="c", hrefs=["/x"], datetime=datetime(2020, 1, 1))
    assert "timezone" in _message(exc)


def test_split_ratios_and_between_predicate_are_checked() -> None:
    with pytest.raises(ValidationError) as exc:
        ev.SplitRatios(train=0.8, val=0.2, test=0.2)
    assert "sum to 1" in _message(exc) and "1.2" in _message(exc)
    with pytest.raises(ValidationError) as exc:
        ev.Predicate(op="between", value=5)
    assert "needs high" in _message(exc)


def test_decode_errors_are_specific() -> None:
    with pytest.raises(EventDecodeError, match="not valid JSON"):
        decode(b"{nope", [ev.Ping])
    with pytest.raises(EventDecodeError, match="JSON object, got list"):
        decode(b"[1]", [ev.Ping])
    with pytest.raises(EventValidationError, match=r"type 'ops\.pong' is not carried"):
        decode(b'{"type": "ops.pong"}', [ev.Ping])
    with pytest.raises(EventValidationError, match="request_id"):
        decode(b'{"type": "ops.ping"}', [ev.Ping])


def test_schema_export_validates_real_events(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "gravitas.streams.cli", "schemas", "export", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    topics = json.loads((tmp_path / "topics.json").read_text())
    assert topics["requests.discovery"] == ["PixelSearch.schema.json", "Featurize.schema.json"]
    for event in examples():
        schema = json.loads((tmp_path / f"{type(event).__name__}.schema.json").read_text())
        jsonschema.validate(json.loads(encode(event)), schema)
    bad = json.loads(encode(examples()[0]))
    bad["hrefs"] = []
    schema = json.loads((tmp_path / "SceneAnnounced.schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
