"""A two-node federation on one machine: two `gravitas node` worker processes with their
own data dirs, topics and edges, one real Apache Kafka broker, and the shared
``stac.registrations`` topic. Data: one real Landsat 7 surface-reflectance GeoTIFF."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from gravitas.schemas.codec import decode
from gravitas.schemas.events import (
    ItemRegistered,
    PixelSearch,
    Predicate,
    SceneAnnounced,
    SearchResult,
    TimeRange,
)
from gravitas.storage.sampledata import fetch
from gravitas.streams.broker import KafkaBroker
from gravitas.streams.topology import Topology
from tests.fixtures.federation import FedNode
from tests.fixtures.federation import federation as start_federation

pytestmark = pytest.mark.kafka
TOKEN = "federation-test-token"


@pytest.fixture
async def federation(
    kafka_broker: KafkaBroker, tmp_path: Path, unique_name: str
) -> AsyncIterator[tuple[FedNode, FedNode, Topology]]:
    def env(name: str, data: Path) -> dict[str, str]:
        return {
            "GRAVITAS_ALLOWED_ROOTS": f'["{fetch("landsat7_series")}", "{data}"]',
            # results travel by reference on both nodes
            "GRAVITAS_INLINE_RESULT_BYTES": "4096",
        }

    async with start_federation(kafka_broker.bootstrap, tmp_path, ("a", "b"), TOKEN, env=env) as f:
        yield f.nodes["a"], f.nodes["b"], f.topology


def _landsat_tif() -> Path:
    root = fetch("landsat7_series")
    return sorted(root.glob("LE7*/*_b3.tif"))[0]


async def _federated_ids(edge: str, collection: str) -> dict[str, str]:
    async with httpx.AsyncClient() as http:
        resp = await http.get(
            f"{edge}/stac/search", params={"collections": collection, "federated": "true"}
        )
    resp.raise_for_status()
    return {f["id"]: f["properties"].get("gravitas:node") for f in resp.json()["features"]}


async def test_scene_on_a_is_found_served_and_retracted_through_b(
    federation: tuple[FedNode, FedNode, Topology], tmp_path: Path
) -> None:
    a, b, _ = federation
    tif = _landsat_tif()
    scene = SceneAnnounced(
        scene_id=f"ls7-{uuid.uuid4().hex[:6]}",
        collection="landsat7-sr",
        hrefs=[str(tif)],
        layer="ls7_red",
        mode="direct",
    )
    async with a.client.transport.subscription("stac.registrations") as sub:
        await a.client.publish(scene)
        async for rec in sub:
            reg = decode(
                rec.value, [ItemRegistered, *b.client.topology.events("stac.registrations")]
            )
            if isinstance(reg, ItemRegistered) and reg.item_id == scene.scene_id:
                registered_at = time.monotonic()
                break

    # B's search finds it within 5 s, naming node A.
    found: dict[str, str] = {}
    while scene.scene_id not in found:
        assert time.monotonic() - registered_at < 5.0, f"not on B after 5 s: {found}"
        found = await _federated_ids(b.edge, "landsat7-sr")
        await asyncio.sleep(0.1)
    assert found[scene.scene_id] == "a"
    # B's copy points at A's asset route (not at A's disk); A serves the bytes, ranged too.
    remote = httpx.get(f"{b.edge}/stac/collections/landsat7-sr/items/{scene.scene_id}").json()
    href = remote["assets"]["b3"]["href"]
    assert href.startswith(f"{a.edge}/stac/assets/"), href
    part = httpx.get(href, headers={"Range": "bytes=0-511"})
    assert part.status_code == 206 and part.content == tif.read_bytes()[:512]
    # A pixel request sent to B runs on A; only the result comes back to B's requester.
    item = httpx.get(f"{a.edge}/stac/collections/landsat7-sr/items/{scene.scene_id}").json()
    w, s, e, n = item["bbox"]
    t = datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))
    search = PixelSearch(
        request_id=f"q-{uuid.uuid4().hex[:6]}",
        layer="ls7_red",
        predicate=Predicate(op=">", value=0),
        bbox=(w, s, e, n),
        time=TimeRange(start=t.replace(hour=0, minute=0), end=t.replace(hour=23, minute=59)),
    )
    reply = await b.client.request(search, timeout=120)
    assert isinstance(reply, SearchResult)
    assert reply.status == "ok", reply.error
    assert reply.served_by == "a"
    assert reply.total_matches > 0
    # the result was too large to travel inline: A's edge fetched A's reference, B stored
    # its own, and B's client read it from B's object store
    assert len(reply.matches) == min(reply.total_matches, search.limit) > 40
    assert (b.data_dir / "objects" / "results" / f"{search.request_id}.json").is_file()

    # A retraction on A disappears from B.
    resp = httpx.delete(
        f"{a.edge}/stac/collections/landsat7-sr/items/{scene.scene_id}",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert resp.status_code == 204, resp.text
    deadline = time.monotonic() + 5
    while scene.scene_id in await _federated_ids(b.edge, "landsat7-sr"):
        assert time.monotonic() < deadline, "retraction did not reach B within 5 s"
        await asyncio.sleep(0.1)
