"""Ingest -> overviews -> discovery through a node (embedded, and one run on real Kafka),
on real Stage IV precipitation of Hurricane Florence; bad scenes are dead-lettered and
leave the stored blocks untouched."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from gravitas.agents.discovery import DiscoveryAgent
from gravitas.agents.ingest import IngestAgent
from gravitas.agents.overviews import OverviewAgent
from gravitas.schemas.common import TimeRange
from gravitas.schemas.events import (
    OverviewsUpdated,
    PixelSearch,
    Predicate,
    Rejected,
    SceneAnnounced,
    SearchResult,
)
from gravitas.schemas.settings import load_settings
from gravitas.storage.blocks import open_block_store
from gravitas.storage.pixels import LayerRegistry
from gravitas.storage.pixels.search import search_pixels
from gravitas.storage.sampledata import fetch
from gravitas.streams.broker import KafkaBroker
from gravitas.streams.node import EmbeddedNode
from tests.fixtures.nodes import kafka_harness, memory_harness

FLORENCE = (-80.7, 32.3, -74.8, 37.7)
WINDOW = TimeRange(start=datetime(2018, 9, 13, tzinfo=UTC), end=datetime(2018, 9, 15, tzinfo=UTC))


def _rid() -> str:
    return f"r-{uuid.uuid4().hex[:10]}"


def stageiv_event() -> SceneAnnounced:
    return SceneAnnounced(
        scene_id="stageiv-florence",
        collection="stageiv",
        hrefs=[str(fetch("stageiv_nc"))],
        layer="stageiv",
    )


def search_event(value: float = 50.0) -> PixelSearch:
    return PixelSearch(
        request_id=_rid(),
        layer="stageiv",
        predicate=Predicate(op=">", value=value),
        bbox=FLORENCE,
        time=WINDOW,
    )


async def test_embedded_ingest_overviews_search(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "node", http_port=0)
    agents = [IngestAgent(), OverviewAgent(), DiscoveryAgent()]
    async with EmbeddedNode(settings, agents=agents, serve_http=False) as node:
        client = node.client()
        await client.publish(stageiv_event())
        await node.runner.drain()
        reply = await client.request(search_event(), "discovery.results", 60)
        assert isinstance(reply, SearchResult) and reply.status == "ok"
        store, registry = node.services.block_store, node.services.layers
        full = search_pixels(
            store, registry, "stageiv", ">", 50.0, FLORENCE, WINDOW.start, WINDOW.end, prune=False
        )
        assert reply.total_matches == full.total > 100
        assert {(round(m.lon, 9), round(m.lat, 9), m.time) for m in reply.matches} == {
            (round(a, 9), round(b, 9), t)
            for a, b, t in zip(*full.lonlat(), full.times(), strict=True)
        }
        assert reply.blocks_read < reply.blocks_total
        assert len(reply.counts_per_time) == 23
        assert max(m.value for m in reply.matches) > 100  # Florence's extreme hourly rain
        # unknown layers are answered, not dropped
        bad = search_event().model_copy(update={"layer": "nope", "request_id": _rid()})
        failed = await client.request(bad, "discovery.results", 30)
        assert isinstance(failed, SearchResult) and failed.status == "failed"
        assert "nope" in (failed.error or "")


def _geotiff(path: Path, north: float, nodata: float = -9999.0) -> Path:
    data = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    with rasterio.open(
        path, "w", driver="GTiff", width=64, height=64, count=1, dtype="float32",
        crs="EPSG:4326", transform=Affine(0.01, 0, 10.0, 0, -0.01, north), nodata=nodata,
    ) as dst:  # fmt: skip
        dst.write(data, 1)
    return path


def _snapshot(data_dir: Path) -> dict[bytes, bytes]:
    store = open_block_store(f"rocksdb://{(data_dir / 'blocks').resolve()}")
    try:
        return {k: store.get_raw(k) or b"" for k in store.scan_keys(b"\x00" * 29, b"\xff" * 29)}
    finally:
        store.close()


async def test_bad_scenes_are_dead_lettered_and_store_unchanged(tmp_path: Path) -> None:
    async with memory_harness(tmp_path) as h:
        files = h.data_dir / "files"
        files.mkdir(parents=True)
        good = _geotiff(files / "good.tif", north=45.0)
        await h.client.publish(
            SceneAnnounced(
                scene_id="good", collection="t", hrefs=[str(good)], layer="synthetic",
                datetime=datetime(2020, 1, 1, tzinfo=UTC),
            )
        )  # fmt: skip
        await h.collect("overviews.updated", lambda evs: len(evs) >= 1, timeout=30)
    before = _snapshot(h.data_dir)
    assert before

    files = h.data_dir / "files"
    full = _geotiff(files / "full.tif", north=45.0).read_bytes()
    (files / "corrupt.tif").write_bytes(full[: len(full) // 3])
    (files / "notes.txt").write_text("not a raster")
    _geotiff(files / "outside.tif", north=96.0)
    cases = {
        "corrupt": ("corrupt.tif", "CorruptFileError"),
        "unknown": ("notes.txt", "UnsupportedFormatError"),
        "outside": ("outside.tif", "InputError"),
        "escape": ("/etc/hostname", "HrefRefusedError"),
    }
    async with memory_harness(tmp_path) as h:
        for sid, (name, _cls) in cases.items():
            href = name if name.startswith("/") else str(files / name)
            await h.client.publish(
                SceneAnnounced(
                    scene_id=sid, collection="t", hrefs=[href], layer="synthetic",
                    datetime=datetime(2020, 1, 1, tzinfo=UTC),
                )
            )  # fmt: skip
        dead = await h.collect("deadletter", lambda evs: len(evs) >= len(cases), timeout=30)
    by_key = {d.source_key: d for d in dead if isinstance(d, Rejected)}
    for sid, (name, cls) in cases.items():
        assert by_key[sid].error_class == cls, by_key[sid].reason
        assert Path(name).name in by_key[sid].reason
    assert "outside the grid" in by_key["outside"].reason
    assert _snapshot(h.data_dir) == before
    registry = LayerRegistry(h.data_dir / "layers.sqlite")
    assert registry.get("synthetic").blocks >= 1
    assert registry.get("synthetic").times == 1


@pytest.mark.kafka
async def test_kafka_worker_ingests_and_searches(
    tmp_path: Path, kafka_broker: KafkaBroker, unique_name: str
) -> None:
    async with kafka_harness(tmp_path, kafka_broker.bootstrap, unique_name) as h:
        await h.client.publish(stageiv_event())
        ovr = await h.collect(
            "overviews.updated",
            lambda evs: len({e.timestamp for e in evs if isinstance(e, OverviewsUpdated)}) >= 23,
            timeout=120,
        )
        assert all(isinstance(e, OverviewsUpdated) and e.top_level == 7 for e in ovr)
        reply = await h.client.request(search_event(), "discovery.results", 60)
        assert isinstance(reply, SearchResult) and reply.status == "ok"
        assert reply.total_matches > 100 and reply.blocks_read < reply.blocks_total
