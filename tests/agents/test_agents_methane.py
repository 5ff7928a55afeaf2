"""The methane agent through an embedded node, on a semi-synthetic EMIT L1B scene (real
AVIRIS-NG spectra, plumes injected through mag1c's real CH4 LUT, EMIT noise): COG, STAC
item, searchable pixel layer, plume events and vector layer; bad inputs dead-lettered;
and the ``gravitas methane`` CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import Point, shape

from gravitas.agents.methane import COLLECTION, PLUME_LAYER
from gravitas.schemas.base import Event
from gravitas.schemas.events import (
    MethaneEnhanced,
    MethaneRequested,
    PixelSearch,
    PlumeDetected,
    Predicate,
    Progress,
    Rejected,
    SearchResult,
    TimeRange,
)
from gravitas.schemas.settings import load_settings
from gravitas.storage.readers.emit import read_emit_l1b, write_emit_l1b
from gravitas.storage.readers.emit_instrument import emit_fwhm, emit_wavelengths
from gravitas.storage.sampledata.emit_scene import WGS84_WKT, Plume, SceneTruth, make_emit_scene
from gravitas.storage.vector.store import VectorStore
from gravitas.streams.broker import KafkaBroker
from gravitas.streams.node import EmbeddedNode
from tests.fixtures.nodes import kafka_harness

ROWS, COLS = 256, 64
PLUMES = (Plume(77.0, 19.0, 6.0, 2000.0), Plume(179.0, 45.0, 6.0, 3000.0))
THRESHOLD, MIN_PIXELS = 1000.0, 20
NAME = "EMIT_L1B_RAD_001_20220815T042838_2222703_003.nc"  # EMIT's naming: time in the name


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SceneTruth]:
    path = tmp_path_factory.mktemp("emit") / NAME
    truth = make_emit_scene(path, ROWS, COLS, PLUMES, seed=0)
    return path, truth


@pytest.fixture
async def node(tmp_path: Path, scene: tuple[Path, SceneTruth]) -> AsyncIterator[EmbeddedNode]:
    settings = load_settings(
        data_dir=tmp_path / "node",
        http_port=0,
        broker="memory://",
        allowed_roots=(scene[0].parent, tmp_path / "files"),
    )
    async with EmbeddedNode(settings, serve_http=False) as n:
        yield n


def _request(href: str, scene_id: str = "emit-synth") -> MethaneRequested:
    return MethaneRequested(
        request_id=f"m-{uuid.uuid4().hex[:8]}",
        scene_id=scene_id,
        href=href,
        plume_threshold_ppm_m=THRESHOLD,
        plume_min_pixels=MIN_PIXELS,
    )


async def _read(node: EmbeddedNode, topic: str) -> list[Event]:
    await node.runner.drain()
    got: list[Event] = []

    async def read() -> None:
        async for ev in node.client().subscribe(topic, from_beginning=True):
            got.append(ev)

    task = asyncio.create_task(read())
    await asyncio.sleep(0.3)
    task.cancel()
    return got


async def test_methane_agent_end_to_end(node: EmbeddedNode, scene: tuple[Path, SceneTruth]) -> None:
    path, truth = scene
    request = _request(str(path))
    reply = await node.client().request(request, "methane.enhanced", 300)
    assert isinstance(reply, MethaneEnhanced), reply
    assert reply.plume_count == 2 and reply.layer == "ch4_enhancement"
    assert 0.0 <= reply.background_mean_ppm_m < 300.0
    assert reply.max_ppm_m > 3000.0

    # plumes: one event each, means within 15 % of the injected truth, polygons over them
    events = await _read(node, "methane.enhanced")
    plumes = [e for e in events if isinstance(e, PlumeDetected)]
    assert len(plumes) == 2
    gt = truth.geotransform
    for k, p in enumerate(PLUMES):
        lon = gt[0] + (p.col + 0.5) * gt[1]
        lat = gt[3] + (p.row + 0.5) * gt[5]
        hit = [e for e in plumes if shape(e.geometry).convex_hull.contains(Point(lon, lat))]
        assert len(hit) == 1, (k, [e.geometry for e in plumes])
        err = abs(hit[0].mean_ppm_m - p.enhancement) / p.enhancement
        assert err < 0.15, (p, hit[0].mean_ppm_m)
        print(
            f"plume {p.enhancement:.0f} ppm m: retrieved mean {hit[0].mean_ppm_m:.0f} ({err:.1%})"
        )
        disc = np.pi * p.radius**2 * 3600.0
        assert 0.5 * disc < hit[0].area_m2 < 2.0 * disc
        assert hit[0].ime_kg > 0 and hit[0].max_ppm_m >= hit[0].mean_ppm_m

    # the COG: in the object store, tiled, georeferenced like the scene, values via the GLT
    key = "methane/emit-synth/ch4_enhancement.tif"
    assert node.services.object_store.exists(key)
    assert reply.cog_href == node.services.object_store.href(key)
    with rasterio.open(urlparse(reply.cog_href).path) as src:
        assert src.crs.to_epsg() == 4326
        assert src.transform.almost_equals(Affine.from_gdal(*gt))
        assert src.dtypes == ("float32",) and np.isnan(src.nodata)
        assert src.profile["tiled"] and src.units == ("ppm m",)
        cog = src.read(1)
    from gravitas.agents.methane_retrieval import retrieve_scene

    sensor = retrieve_scene(path, threshold=THRESHOLD, min_pixels=MIN_PIXELS).sensor.enhancement
    glt = read_emit_l1b(path).glt
    assert glt is not None
    expected = sensor[glt[..., 1] - 1, glt[..., 0] - 1]
    np.testing.assert_allclose(cog, expected, rtol=1e-5, atol=1e-3)

    # the STAC item: derived from the radiance, processing extension, unit ppm m
    item = node.services.catalog.get_item(COLLECTION, reply.item_id)
    links = [lk for lk in item["links"] if lk["rel"] == "derived_from"]
    assert links and links[0]["href"] == path.resolve().as_uri()
    assert item["properties"]["processing:level"] == "L2"
    assert item["assets"]["data"]["raster:bands"][0]["unit"] == "ppm m"
    assert item["assets"]["data"]["href"] == reply.cog_href
    assert item["properties"]["datetime"].startswith("2022-08-15T04:28:38")
    print(f"retrieval in the agent: {item['properties']['methane:retrieval_s']} s")

    # the pixel layer: a search > threshold finds the plumes' pixels (and the strongest
    # background speckles of the sparse filter, as many as the COG has)
    t0 = item["properties"]["datetime"]
    start = datetime.fromisoformat(t0.replace("Z", "+00:00"))
    w, n = gt[0], gt[3]
    e, s = gt[0] + COLS * gt[1], gt[3] + ROWS * gt[5]
    search = PixelSearch(
        request_id=f"q-{uuid.uuid4().hex[:8]}",
        layer="ch4_enhancement",
        predicate=Predicate(op=">", value=THRESHOLD),
        bbox=(w, s, e, n),
        time=TimeRange(start=start - timedelta(hours=1), end=start + timedelta(hours=1)),
    )
    found = await node.client().request(search, "discovery.results", 60)
    assert isinstance(found, SearchResult) and found.status == "ok", found
    above = int(np.sum(cog > THRESHOLD))
    assert 0.7 * above < found.total_matches < 1.3 * above
    assert all(m.value > THRESHOLD for m in found.matches)
    for plume in plumes:
        footprint = shape(plume.geometry)
        inside = sum(footprint.contains(Point(m.lon, m.lat)) for m in found.matches)
        assert inside > 0.5 * plume.area_m2 / 3600.0, (plume.plume_id, inside)

    # the plumes as a vector layer, and progress events for the request
    with VectorStore.for_data_dir(node.services.data_dir) as store:
        assert store.layer(PLUME_LAYER).count == 2
    progress = [
        p for p in await _read(node, "progress")
        if isinstance(p, Progress) and p.request_id == request.request_id
    ]  # fmt: skip
    assert any(p.stage == "retrieval" and p.fraction == 1.0 for p in progress)
    assert {"reading", "retrieval", "writing", "indexing"} <= {p.stage for p in progress}


async def test_bad_inputs_are_dead_lettered_with_a_reason(
    node: EmbeddedNode, tmp_path: Path, scene: tuple[Path, SceneTruth]
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    tif = files / "rgb.tif"
    with rasterio.open(
        tif, "w", driver="GTiff", width=8, height=8, count=3, dtype="uint8", crs="EPSG:4326",
        transform=Affine(0.01, 0, 10.0, 0, -0.01, 45.0),
    ) as dst:  # fmt: skip
        dst.write(np.zeros((3, 8, 8), dtype=np.uint8))
    empty = files / "EMIT_empty.nc"
    write_emit_l1b(
        empty, np.full((8, 12, 285), np.nan, np.float32), wavelengths=emit_wavelengths(),
        fwhm=emit_fwhm(), geotransform=(10.0, 0.01, 0.0, 45.0, 0.0, -0.01), crs_wkt=WGS84_WKT,
    )  # fmt: skip
    cases = {
        "tif": (str(tif), "NotHyperspectralFileError", "rgb.tif"),
        "all-nan": (str(empty), "EmptyColumnError", "all NaN"),
        "window": (str(scene[0]), "EmptyWindowError", "no band inside window 300-350 nm"),
        "missing": (str(files / "nope.nc"), "HrefRefusedError", "nope.nc"),
        "outside": ("/etc/hostname", "HrefRefusedError", "/etc/hostname"),
    }
    client = node.client()
    for sid, (href, _cls, _text) in cases.items():
        req = _request(href, scene_id=sid)
        if sid == "window":
            req = req.model_copy(update={"window_nm": (300.0, 350.0)})
        await client.publish(req)
    dead = [d for d in await _read(node, "deadletter") if isinstance(d, Rejected)]
    by_key = {d.source_key: d for d in dead}
    for sid, (_href, cls, text) in cases.items():
        assert by_key[sid].error_class == cls, by_key[sid].reason
        assert text in by_key[sid].reason
    assert not list(node.services.object_store.list("methane/"))


def test_cli_writes_cog_png_and_geojson(scene: tuple[Path, SceneTruth], tmp_path: Path) -> None:
    from PIL import Image

    path, _truth = scene
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "gravitas.streams.cli", "methane", str(path), "--out", str(out),
         "--threshold", str(THRESHOLD), "--min-pixels", str(MIN_PIXELS)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "2 plume" in proc.stdout
    with rasterio.open(out / "ch4_enhancement.tif") as src:
        assert src.crs.to_epsg() == 4326 and np.nanmax(src.read(1)) > 3000.0
    png = np.asarray(Image.open(out / "quicklook.png").convert("RGB"))
    assert png.shape[0] >= ROWS and png.std() > 10
    fc = json.loads((out / "plumes.geojson").read_text())
    assert len(fc["features"]) == 2
    helptext = subprocess.run(
        [sys.executable, "-m", "gravitas.streams.cli", "methane", "--help"],
        capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    assert "Example:" in helptext


@pytest.mark.kafka
async def test_kafka_worker_runs_the_methane_agent(
    tmp_path: Path, scene: tuple[Path, SceneTruth], kafka_broker: KafkaBroker, unique_name: str
) -> None:
    incoming = tmp_path / "node" / "files"  # the default root: <data dir>/files
    incoming.mkdir(parents=True)
    local = incoming / NAME
    local.write_bytes(scene[0].read_bytes())
    async with kafka_harness(tmp_path, kafka_broker.bootstrap, unique_name) as h:
        request = _request(str(local))
        reply = await h.client.request(request, "methane.enhanced", 300)
        assert isinstance(reply, MethaneEnhanced) and reply.plume_count == 2
        plumes = await h.collect(
            "methane.enhanced",
            lambda evs: sum(isinstance(e, PlumeDetected) for e in evs) >= 2,
            timeout=60,
        )
        means = sorted(e.mean_ppm_m for e in plumes if isinstance(e, PlumeDetected))
        for got, want in zip(means, sorted(p.enhancement for p in PLUMES), strict=True):
            assert abs(got - want) < 0.15 * want
        progress = await h.collect(
            "progress",
            lambda evs: any(isinstance(e, Progress) and e.stage == "indexing" for e in evs),
            timeout=30,
        )
        assert any(isinstance(p, Progress) and p.stage == "retrieval" for p in progress)
    assert Path(urlparse(reply.cog_href).path).is_file()
