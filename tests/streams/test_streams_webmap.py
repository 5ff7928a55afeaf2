"""The node's web page in a real browser (Debian's chromium driven by Playwright) on two
federated worker processes over the real Kafka broker: the page loads with no console
errors, shows the catalog footprints of BOTH nodes, draws a tile layer from node A's
pyramids, receives the live pipeline over server-sent events, and every request it makes
goes to the node itself. A screenshot is kept (path printed)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from gravitas.agents.signing import NodeIdentity
from gravitas.schemas.events import SceneAnnounced
from gravitas.schemas.settings import load_settings
from gravitas.storage.sampledata import fetch
from gravitas.streams.broker import create_topics
from gravitas.streams.client import Client
from gravitas.streams.topology import Topology
from gravitas.streams.transports.kafka import KafkaTransport
from tests.fixtures.layers import LAYER, write_stageiv
from tests.fixtures.nodes import Worker, kafka_env

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
TOKEN = "webmap-test-token"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@dataclass
class Node:
    name: str
    worker: Worker
    client: Client
    data_dir: Path

    @property
    def edge(self) -> str:
        return str(orjson.loads((self.data_dir / "node.json").read_bytes())["edge_url"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def two_nodes(kafka_broker, tmp_path: Path) -> AsyncIterator[tuple[Node, Node]]:  # type: ignore[no-untyped-def]
    fed = f"f{uuid.uuid4().hex[:8]}."
    ports = {name: _free_port() for name in ("a", "b")}
    keys = {
        name: NodeIdentity.load(load_settings(data_dir=tmp_path / name, node_id=name)).public_key
        for name in ("a", "b")
    }
    write_stageiv(tmp_path / "a", max_times=1)  # node A holds a layer with its pyramid
    nodes: list[Node] = []
    for name in ("a", "b"):
        other = "b" if name == "a" else "a"
        prefix = f"{name}{uuid.uuid4().hex[:8]}."
        topology = Topology(prefix=prefix, partitions=2, federation_prefix=fed)
        await create_topics(kafka_broker.bootstrap, topology.partition_counts())
        data = tmp_path / name
        env = kafka_env(kafka_broker.bootstrap, prefix, data, name, f"g-{prefix}")
        peer = {"public_key": keys[other], "api_url": f"http://127.0.0.1:{ports[other]}"}
        env.update(
            GRAVITAS_FEDERATION_PREFIX=fed,
            GRAVITAS_API_TOKEN=TOKEN,
            GRAVITAS_HTTP_PORT=str(ports[name]),
            GRAVITAS_PARTITIONS="2",
            GRAVITAS_PEERS=orjson.dumps({other: peer}).decode(),
            GRAVITAS_ALLOWED_ROOTS=f'["{fetch("landsat7_series")}", "{data}"]',
        )
        worker = Worker(env, tmp_path / f"{name}.log")
        worker.start()
        transport = KafkaTransport(f"kafka://{kafka_broker.bootstrap}", topology)
        client = Client(
            f"kafka://{kafka_broker.bootstrap}", topology=topology, transport=transport,
            data_dir=data,
        )  # fmt: skip
        nodes.append(Node(name, worker, client, data))
    try:
        for node in nodes:
            deadline = time.monotonic() + 60
            while not (node.data_dir / "node.json").exists():
                assert time.monotonic() < deadline, node.worker.output()
                await asyncio.sleep(0.2)
        yield nodes[0], nodes[1]
    finally:
        for node in nodes:
            node.worker.stop()
            await node.client.close()


async def _footprint_nodes(edge: str) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=30) as http:
        fc = (await http.get(f"{edge}/web/footprints")).json()
    counts: dict[str, int] = {}
    for f in fc["features"]:
        counts[f["properties"]["node"]] = counts.get(f["properties"]["node"], 0) + 1
    return counts


def artifact_path() -> Path:
    root = Path(os.environ.get("GRAVITAS_TEST_ARTIFACTS", tempfile.gettempdir()))
    root.mkdir(parents=True, exist_ok=True)
    return root / "gravitas-webmap.png"


async def test_web_page_in_chromium_shows_two_nodes_and_tiles(
    two_nodes: tuple[Node, Node], tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    a, b = two_nodes
    tifs = sorted(fetch("landsat7_series").glob("LE7*/*_b3.tif"))
    for node, tif in ((a, tifs[0]), (b, tifs[-1])):
        await node.client.publish(
            SceneAnnounced(
                scene_id=f"ls7-{node.name}-{uuid.uuid4().hex[:6]}",
                collection="landsat7-sr",
                hrefs=[str(tif)],
                layer=f"ls7_red_{node.name}",
                mode="direct",
            )
        )
    t0 = time.monotonic()
    deadline = t0 + 90
    while set(await _footprint_nodes(a.edge)) != {"a", "b"}:
        assert time.monotonic() < deadline, (a.worker.output(), b.worker.output())
        await asyncio.sleep(0.5)

    print(f"\nfootprints of both nodes after {time.monotonic() - t0:.1f} s")
    origin = a.edge.rstrip("/")
    console_errors: list[str] = []
    requests: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            page.on(
                "console",
                lambda m: console_errors.append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: console_errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            await page.goto(origin + "/", wait_until="load")
            await page.wait_for_function(
                "() => window.gravitas && window.gravitas.ready", timeout=30_000
            )
            counts = await page.evaluate("window.gravitas.footprints")
            assert counts.get("a", 0) >= 1 and counts.get("b", 0) >= 1, counts
            legend = await page.locator("#nodes li").all_inner_texts()
            assert any(t.startswith("a:") for t in legend) and any(
                t.startswith("b:") for t in legend
            )
            # the tile layer over Florence's rain, from node A's pyramids
            await page.select_option("#layer", LAYER)
            await page.evaluate("window.gravitas.tileLoads = 0")
            await page.evaluate("window.gravitas.map.setView([34.5, -77.5], 6)")
            await page.wait_for_function("() => window.gravitas.tileLoads >= 4", timeout=30_000)
            await page.wait_for_function(
                "() => window.gravitas.pipelineUpdates >= 1", timeout=30_000
            )
            assert await page.evaluate("window.gravitas.tileErrors") == 0
            assert await page.evaluate("window.gravitas.layer") == LAYER
            topics = await page.locator("#topics tbody tr").count()
            assert topics > 5
            await page.wait_for_timeout(1500)  # let the tiles paint
            shot = tmp_path / "webmap.png"
            await page.screenshot(path=str(shot), full_page=True)
        finally:
            await browser.close()
    assert console_errors == [], console_errors
    tile_requests = [u for u in requests if ("/tiles/" in u and u.endswith(".png")) or ".png?" in u]
    assert tile_requests, requests
    foreign = [u for u in requests if not (u.startswith(origin + "/") or u.startswith("data:"))]
    assert foreign == [], foreign
    assert shot.stat().st_size > 10_000
    kept = artifact_path()
    shutil.copyfile(shot, kept)
    print(f"\nweb page screenshot: {kept}")
