"""The node's web page in a real browser (Debian's chromium driven by Playwright) on two
federated worker processes over the real Kafka broker: the page loads with no console
errors, shows the catalog footprints of BOTH nodes, draws a tile layer from node A's
pyramids, receives the live pipeline over server-sent events, and every request it makes
goes to the node itself. A screenshot is kept (path printed).

The same two nodes carry the federation checks: a click on an item whose quicklook is
in node A's object store opens it through A's asset route (never a raw store href), the
page's federation table shows both nodes from their signed metrics, and
``gravitas monitor --once --json`` on node A shows both nodes with rates, lag, dead
letters and requests, while an unsigned peer and a peer answering with another key are
refused (none of their numbers shown) and a node heard of on a federation topic but not
on the allow-list is listed, never contacted."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from PIL import Image

from gravitas.agents.signing import NodeIdentity, generate_seed
from gravitas.schemas.events import Ping, SceneAnnounced
from gravitas.schemas.settings import load_settings
from gravitas.storage.sampledata import fetch
from gravitas.streams.monitor.federation import PEER_DEADLINE_S, sign_metrics
from tests.fixtures.federation import FedNode, federation
from tests.fixtures.layers import LAYER, write_stageiv

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
TOKEN = "webmap-test-token"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


Node = FedNode


@pytest.fixture
def silent_peer() -> Iterator[str]:
    """A peer that accepts connections and never answers (a real listening socket)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@pytest.fixture
async def two_nodes(  # type: ignore[no-untyped-def]
    kafka_broker, tmp_path: Path, silent_peer: str
) -> AsyncIterator[tuple[Node, Node]]:
    write_stageiv(tmp_path / "a", max_times=1)  # node A holds a layer with its pyramid
    landsat = fetch("landsat7_series")
    silent_key = NodeIdentity.load(
        load_settings(data_dir=tmp_path / "silent", node_id="silent")
    ).public_key

    def env(name: str, data: Path) -> dict[str, str]:
        return {"GRAVITAS_ALLOWED_ROOTS": f'["{landsat}", "{data}"]'}

    async with federation(
        kafka_broker.bootstrap, tmp_path, ("a", "b"), TOKEN, partitions=2, env=env,
        extra_peers={"silent": {"public_key": silent_key, "api_url": silent_peer}},
    ) as fed:  # fmt: skip
        yield fed.nodes["a"], fed.nodes["b"]


async def _footprint_nodes(edge: str) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=30) as http:
        fc = (await http.get(f"{edge}/web/footprints")).json()
    counts: dict[str, int] = {}
    for f in fc["features"]:
        counts[f["properties"]["node"]] = counts.get(f["properties"]["node"], 0) + 1
    return counts


QUICKLOOK_KEY = "assets/quicklooks/pacific-ql.png"
QL_BOX = (149.0, -31.0, 151.0, -29.0)
QLB_BOX = (120.0, -31.0, 122.0, -29.0)


def _quicklook_png(path: Path, width: int = 64, height: int = 48) -> bytes:
    """A gradient PNG (the quicklook the object store holds)."""
    ramp = np.linspace(0, 255, width, dtype=np.uint8)
    rgb = np.stack([np.tile(ramp, (height, 1))] * 3, axis=-1)
    rgb[..., 1] = 128
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def _box_item(item_id: str, box: tuple[float, float, float, float], thumb: str) -> dict[str, Any]:
    w, s, e, n = box
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "bbox": [w, s, e, n],
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
        },
        "properties": {"datetime": "2024-06-01T00:00:00Z"},
        "assets": {"thumbnail": {"href": thumb, "type": "image/png", "roles": ["thumbnail"]}},
        "links": [],
    }


async def _add_quicklook_items(node: Node, coll_id: str = "quicklooks") -> bytes:
    """A collection on ``node`` with one item whose thumbnail is an object of its store
    (written through the STAC API with the asset-route URL, stored as the store's href)
    and (on node A) items whose thumbnails must never reach the page."""
    if node.name == "b":
        png = _quicklook_png(node.data_dir / "objects" / QUICKLOOK_KEY, 32, 24)
        items = [_box_item("qlb-store", QLB_BOX, f"{node.edge}/stac/assets/{QUICKLOOK_KEY}")]
    else:
        png = _quicklook_png(node.data_dir / "objects" / QUICKLOOK_KEY)
        items = [
            _box_item("ql-store", QL_BOX, f"{node.edge}/stac/assets/{QUICKLOOK_KEY}"),
            _box_item("ql-foreign", (100, 10, 101, 11), "https://elsewhere.example/t.png"),
            _box_item("ql-unpublished", (102, 10, 103, 11),
                      (node.data_dir / "objects" / "results" / "x.png").resolve().as_uri()),
            _box_item("ql-raw-path", (104, 10, 105, 11), "/etc/passwd"),
        ]  # fmt: skip
    auth = {"authorization": f"Bearer {TOKEN}"}
    coll = {
        "type": "Collection", "id": coll_id, "stac_version": "1.0.0",
        "description": "items with quicklooks", "license": "other", "links": [],
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                   "temporal": {"interval": [[None, None]]}},
    }  # fmt: skip
    async with httpx.AsyncClient(base_url=node.edge, timeout=30, headers=auth) as http:
        reply = await http.post("/stac/collections", json=coll)
        assert reply.status_code == 201, reply.text
        for item in items:
            reply = await http.post(f"/stac/collections/{coll_id}/items", json=item)
            assert reply.status_code == 201, reply.text
    return png


CUBE_BOX = {"a": (160.0, -31.0, 162.0, -29.0), "b": (130.0, -31.0, 132.0, -29.0)}
CUBE_SIZE = {"a": (40, 30), "b": (36, 20)}


async def _post(node: Node, path: str, doc: dict[str, Any]) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=node.edge, timeout=30, headers=auth) as http:
        reply = await http.post(path, json=doc)
        assert reply.status_code == 201, reply.text


def _cube_collection(cid: str, box: tuple[float, ...], assets: dict[str, str]) -> dict[str, Any]:
    """A datacube collection as the datacube writer registers it (its quicklooks are
    collection assets ``quicklook_<modality>`` with the store's hrefs)."""
    return {
        "type": "Collection", "id": cid, "stac_version": "1.0.0", "license": "other",
        "description": f"AI-ready datacube of request {cid}", "links": [],
        "extent": {"spatial": {"bbox": [list(box)]},
                   "temporal": {"interval": [["2018-09-14T00:00:00Z",
                                              "2018-09-16T00:00:00Z"]]}},
        "cube:dimensions": {"band": {"type": "bands", "values": ["precip:stageiv"]}},
        "assets": {name: {"href": href, "type": "image/png", "roles": ["overview"]}
                   for name, href in assets.items()},
    }  # fmt: skip


async def _add_datacube(node: Node) -> bytes:
    """A datacube collection ``datacube-cube<name>`` on ``node`` with its quicklook in the
    store and its train split item; on node B also collections whose quicklook assets are
    not datacube quicklooks (another published object, an unpublished one)."""
    rid = f"cube{node.name}"
    key = f"datacubes/{rid}/quicklook_precip.png"
    png = _quicklook_png(node.data_dir / "objects" / key, *CUBE_SIZE[node.name])
    store_href = (node.data_dir / "objects" / key).resolve().as_uri()
    box = CUBE_BOX[node.name]
    coll = _cube_collection(f"datacube-{rid}", box, {"quicklook_precip": store_href})
    await _post(node, "/stac/collections", coll)
    item = _box_item(f"datacube-{rid}-train", box, store_href)
    item["assets"] = {"data": {"href": store_href.replace("quicklook_precip.png", "cube.zarr"),
                               "roles": ["data"]}}  # fmt: skip
    item["properties"] = {
        "datetime": None, "start_datetime": "2018-09-14T00:00:00Z",
        "end_datetime": "2018-09-16T00:00:00Z", "gravitas:split": "train",
    }  # fmt: skip
    await _post(node, f"/stac/collections/datacube-{rid}/items", item)
    objects = (node.data_dir / "objects").resolve()
    if node.name == "b":
        await _post(node, "/stac/collections", _cube_collection("datacube-evil", box, {
            "quicklook_precip": (objects / QUICKLOOK_KEY).as_uri(),
            "quicklook_x": (objects / "results" / "x.png").as_uri(),
        }))  # fmt: skip
    else:
        await _post(node, "/stac/collections", _cube_collection("datacube-bad", box, {
            "quicklook_precip": "/etc/passwd",
            "quicklook_y": "https://elsewhere.example/datacubes/bad/quicklook_y.png",
        }))  # fmt: skip
    return png


def _tree_digest(root: Path) -> list[tuple[str, int, int]]:
    """Every stored object file: path, size, checksum."""
    return sorted(
        (str(p.relative_to(root)), p.stat().st_size, zlib.crc32(p.read_bytes()))
        for p in root.rglob("*")
        if p.is_file()
    )


@dataclass
class Rogue:
    """A server posing as a peer: ``unsigned`` answers fake metrics with no signature,
    ``forged`` signs them with a key that is not the one configured for it."""

    mode: str
    url: str = ""
    hits: int = 0
    key: NodeIdentity | None = None


FAKE_METRICS = b'gravitas_events_processed_total{agent="evil",topic="x"} 999999.0\n'


@contextmanager
def _rogue(mode: str, node_id: str, tmp: Path) -> Iterator[Rogue]:
    rogue = Rogue(mode)
    if mode == "forged":
        rogue.key = NodeIdentity.load(
            load_settings(data_dir=tmp / f"rogue-{node_id}", node_id=node_id)
        )

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            rogue.hits += 1
            nonce = self.path.split("nonce=")[-1]
            headers = sign_metrics(rogue.key, nonce, FAKE_METRICS) if rogue.key else {}
            self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(FAKE_METRICS)))
            self.end_headers()
            self.wfile.write(FAKE_METRICS)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rogue.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield rogue
    finally:
        server.shutdown()
        server.server_close()


async def _monitor_federation(a: Node, b: Node, tmp: Path) -> dict[str, Any]:
    """``gravitas monitor --once --json`` on node A with two rogue peers added to its
    allow-list, while pings flow to both nodes and a node off the allow-list writes on
    a federation topic."""
    a_key = NodeIdentity.load(load_settings(data_dir=a.data_dir, node_id="a")).public_key
    b_key = NodeIdentity.load(load_settings(data_dir=b.data_dir, node_id="b")).public_key
    other_key = NodeIdentity.load(
        load_settings(data_dir=tmp / "other", node_id="x", signing_key=generate_seed())
    ).public_key
    assert a_key and b_key
    with _rogue("unsigned", "c", tmp) as c, _rogue("forged", "d", tmp) as d:
        peers = {
            "b": {"public_key": b_key, "api_url": b.edge.rstrip("/")},
            "c": {"public_key": other_key, "api_url": c.url},
            "d": {"public_key": other_key, "api_url": d.url},
        }
        env = {**a.env, "GRAVITAS_PEERS": orjson.dumps(peers).decode()}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gravitas.streams.cli", "monitor", "--once", "--json",
            "--window", "3", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        stranger = orjson.dumps(
            {"type": "item.registered", "node_id": "e", "event_id": str(uuid.uuid4())}
        )

        async def traffic() -> None:
            while proc.returncode is None:
                for node in (a, b):
                    await node.client.publish(Ping(request_id=f"fm-{uuid.uuid4().hex[:6]}"))
                await a.client.transport.publish("stac.registrations", b"e", stranger)
                await asyncio.sleep(0.3)

        pings = asyncio.create_task(traffic())
        out, err = await asyncio.wait_for(proc.communicate(), 90)
        pings.cancel()
        await asyncio.gather(pings, return_exceptions=True)
        assert proc.returncode == 0, err.decode()
        assert c.hits >= 1 and d.hits >= 1  # contacted, and refused
    snap: dict[str, Any] = orjson.loads(out.decode().strip().splitlines()[-1])
    return snap


def artifact_path() -> Path:
    root = Path(os.environ.get("GRAVITAS_TEST_ARTIFACTS", tempfile.gettempdir()))
    root.mkdir(parents=True, exist_ok=True)
    return root / "gravitas-webmap.png"


async def test_web_page_in_chromium_shows_two_nodes_and_tiles(
    two_nodes: tuple[Node, Node], tmp_path: Path
) -> None:
    from playwright.async_api import TimeoutError as PlaywrightTimeout
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
    png = await _add_quicklook_items(a)
    png_b = await _add_quicklook_items(b, "quicklooks-b")
    cube_png = {node.name: await _add_datacube(node) for node in (a, b)}
    quicklooks: dict[str, Any] = {}
    cubes: dict[str, Any] = {}
    while not {"ql-raw-path", "qlb-store"} <= set(quicklooks) or len(cubes) < 2:
        assert time.monotonic() < deadline, a.worker.output()
        async with httpx.AsyncClient(timeout=30) as http:
            fc = (await http.get(f"{a.edge}/web/footprints")).json()
        quicklooks = {
            f["properties"]["id"]: f["properties"]["quicklook"]
            for f in fc["features"]
            if f["properties"]["collection"] in ("quicklooks", "quicklooks-b")
        }
        cubes = {
            f["properties"]["id"]: f["properties"]["cube_quicklooks"]
            for f in fc["features"]
            if f["properties"]["collection"].startswith("datacube-cube")
        }
        await asyncio.sleep(0.3)
    # datacube split items: their collection's quicklooks, listed by A's route
    assert cubes == {
        "datacube-cubea-train": "/web/datacube-quicklooks/a/datacube-cubea",
        "datacube-cubeb-train": "/web/datacube-quicklooks/b/datacube-cubeb",
    }, cubes
    # only the store's published object, through the asset route (node B's through A's
    # proxy of B's configured asset route); nothing else
    ql_path = f"/stac/assets/{QUICKLOOK_KEY}"
    qlb_path = f"/web/quicklooks/b/{QUICKLOOK_KEY}"
    assert quicklooks == {
        "ql-store": ql_path, "ql-foreign": None, "ql-unpublished": None, "ql-raw-path": None,
        "qlb-store": qlb_path,
    }, quicklooks  # fmt: skip
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
            try:  # a loaded machine can take a while to render the outlines
                await page.wait_for_function(
                    "() => window.gravitas && window.gravitas.ready", timeout=60_000
                )
            except PlaywrightTimeout:
                raise AssertionError(f"page not ready: {console_errors} {requests}") from None
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
            # the federation table: both nodes from their signed metrics
            await page.wait_for_function(
                "() => window.gravitas.federation.a === 'ok'"
                " && window.gravitas.federation.b === 'ok'",
                timeout=30_000,
            )
            rows = await page.locator("#federation tbody tr").all_inner_texts()
            assert any(r.startswith("a (this node)") for r in rows), rows
            # the silent peer (a socket that never answers) is named as such, and the
            # page's live pipeline still refreshes on time (2 s + the per-node deadline,
            # not the 5 s HTTP timeout)
            silent = await page.evaluate("window.gravitas.federation.silent")
            assert silent.startswith("unreachable: no answer within"), silent
            row = page.locator("#federation tbody tr[data-node='silent']")
            assert "no answer within" in await row.inner_text()
            n = await page.evaluate("window.gravitas.pipelineUpdates")
            await page.wait_for_function(f"() => window.gravitas.pipelineUpdates > {n}")
            t_update = time.monotonic()
            await page.wait_for_function(f"() => window.gravitas.pipelineUpdates > {n + 1}")
            gap = time.monotonic() - t_update
            assert gap < 2.0 + PEER_DEADLINE_S + 1.0, gap
            # a click on the Pacific footprint opens its quicklook from the asset route
            await page.evaluate(
                f"window.gravitas.map.setView([{(QL_BOX[1] + QL_BOX[3]) / 2}, "
                f"{(QL_BOX[0] + QL_BOX[2]) / 2}], 7, {{animate: false}})"
            )
            await page.wait_for_timeout(300)
            box = await page.locator("#map").bounding_box()
            assert box is not None
            await page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            await page.wait_for_function(
                "() => window.gravitas.quicklooks.includes('ql-store')", timeout=15_000
            )
            img = page.locator(".leaflet-popup img.quicklook[alt='quicklook of ql-store']")
            assert await img.get_attribute("src") == ql_path
            assert await img.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [64, 48]
            assert await page.evaluate("window.gravitas.quicklookErrors") == 0
            await page.screenshot(path=str(tmp_path / "quicklook.png"))
            # node B's item: its quicklook through A's peer route, still same-origin
            await page.evaluate(
                f"window.gravitas.map.setView([{(QLB_BOX[1] + QLB_BOX[3]) / 2}, "
                f"{(QLB_BOX[0] + QLB_BOX[2]) / 2}], 7, {{animate: false}})"
            )
            await page.wait_for_timeout(300)
            await page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            await page.wait_for_function(
                "() => window.gravitas.quicklooks.includes('qlb-store')", timeout=15_000
            )
            # the first popup may still be closing: name the image by its item
            img = page.locator(".leaflet-popup img.quicklook[alt='quicklook of qlb-store']")
            assert await img.get_attribute("src") == qlb_path
            assert await img.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [32, 24]
            # datacube split items (A's and B's): the collection's quicklook with a
            # caption placing it (band, region, time, units), from same-origin routes
            for name in ("a", "b"):
                w, s_, e, n = CUBE_BOX[name]
                await page.evaluate(
                    f"window.gravitas.map.setView([{(s_ + n) / 2}, {(w + e) / 2}], 7,"
                    " {animate: false})"
                )
                await page.wait_for_timeout(300)
                await page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
                label = f"datacube-cube{name}-train:precip"
                await page.wait_for_function(
                    f"() => window.gravitas.quicklooks.includes('{label}')", timeout=15_000
                )
                fig = page.locator(
                    ".leaflet-popup figure.cube-quicklook[data-modality='precip']"
                ).filter(has=page.locator(
                    f"img[alt='quicklook of datacube-cube{name}-train (precip)']"
                ))  # fmt: skip
                img = fig.locator("img")
                src = f"datacubes/cube{name}/quicklook_precip.png"
                expected_src = f"/stac/assets/{src}" if name == "a" else f"/web/quicklooks/b/{src}"
                assert await img.get_attribute("src") == expected_src
                size = await img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
                assert size == list(CUBE_SIZE[name]), size
                caption = await fig.locator("figcaption").inner_text()
                assert caption.startswith(f"datacube-cube{name}: precip:stageiv over "), caption
                assert "2018-09-14 to 2018-09-16" in caption and "units" in caption, caption
                place = f"{-s_:.2f}° S to {-n:.2f}° S, {w:.2f}° E to {e:.2f}° E"
                assert place in caption, caption
            assert await page.evaluate("window.gravitas.quicklookErrors") == 0
            await page.screenshot(path=str(tmp_path / "cube-quicklook.png"))
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
    assert origin + ql_path in requests
    async with httpx.AsyncClient(timeout=30) as http:
        served = await http.get(origin + ql_path)
        assert served.status_code == 200 and served.content == png
        served = await http.get(origin + qlb_path)
        assert served.status_code == 200 and served.content == png_b
        assert served.headers["content-type"] == "image/png"
        for path, status, text in (
            ("/web/quicklooks/zed/assets/quicklooks/pacific-ql.png", 404, "'zed'"),
            ("/web/quicklooks/b/results/x.png", 404, "'results/x.png'"),
            ("/web/quicklooks/b/assets/%2E%2E/%2E%2E/node_key", 404, "node_key"),
            ("/web/quicklooks/b/assets/quicklooks/missing.png", 502, "404"),
        ):
            reply = await http.get(origin + path)
            assert reply.status_code == status and text in reply.json()["detail"], reply.text
    await _datacube_routes_refuse_the_rest(a, b, cube_png)
    kept_ql = artifact_path().with_name("gravitas-webmap-quicklook.png")
    shutil.copyfile(tmp_path / "quicklook.png", kept_ql)

    # gravitas monitor over the whole federation, from node A
    snap = await _monitor_federation(a, b, tmp_path)
    fed = {r["node_id"]: r for r in snap["federation"]}
    assert set(fed) == {"a", "b", "c", "d", "e"}, fed
    for name in ("a", "b"):
        row = fed[name]
        assert row["status"] == "ok", row
        assert row["events"] >= 1 and row["event_rate"] > 0, row
        assert row["requests"] >= 1 and row["lag"] is not None and row["deadletters"] >= 0
    assert fed["a"]["self"] and not fed["b"]["self"]
    assert fed["c"]["status"].startswith("refused") and "signature" in fed["c"]["status"]
    assert fed["d"]["status"].startswith("refused") and "does not verify" in fed["d"]["status"]
    assert fed["e"]["status"].startswith("not allow-listed") and fed["e"]["url"] == ""
    for name in ("c", "d", "e"):
        assert fed[name]["events"] is None and fed[name]["event_rate"] is None, fed[name]
    assert "999999" not in orjson.dumps(snap).decode()
    kept = artifact_path()
    shutil.copyfile(shot, kept)
    print(f"\nweb page screenshot: {kept}")


async def _datacube_routes_refuse_the_rest(a: Node, b: Node, cube_png: dict[str, bytes]) -> None:
    """The datacube quicklook route: the images equal the stored bytes; every other
    collection, asset, key or node is refused naming it, and nothing stored changes."""
    origin = a.edge.rstrip("/")
    async with httpx.AsyncClient(timeout=30) as http:

        async def state() -> tuple[Any, ...]:
            fps = [(await http.get(f"{n.edge}/web/footprints")).json()["features"] for n in (a, b)]
            return (*fps, *(_tree_digest(n.data_dir / "objects") for n in (a, b)))

        before = await state()
        for name in ("a", "b"):
            listed = await http.get(f"{origin}/web/datacube-quicklooks/{name}/datacube-cube{name}")
            (look,) = listed.json()["quicklooks"]
            assert (await http.get(origin + look["url"])).content == cube_png[name]
        for path, status, text in (
            ("zed/datacube-cubeb", 404, "'zed'"),
            ("b/quicklooks-b", 404, "'quicklooks-b' is not a datacube collection"),
            ("a/quicklooks", 404, "'quicklooks' is not a datacube collection"),
            ("b/datacube-%2E%2E", 404, "'datacube-..'"),
            ("b/datacube-nope", 502, "HTTP 404 for 'datacube-nope'"),
            ("a/datacube-nope", 404, "'datacube-nope' not found"),
            # B's datacube-like collection naming another published object and an
            # unpublished one: neither is a datacube quicklook
            ("b/datacube-evil", 404, "assets/quicklooks/pacific-ql.png"),
            ("b/datacube-evil", 404, "quicklook_x: "),
            ("a/datacube-bad", 404, "'/etc/passwd' is not 'datacubes/bad/quicklook_precip.png'"),
            ("a/datacube-bad", 404, "'https://elsewhere.example/datacubes/bad/quicklook_y.png'"),
        ):
            reply = await http.get(f"{origin}/web/datacube-quicklooks/{path}")
            detail = reply.json()["detail"]
            assert reply.status_code == status and text in detail, (path, reply.text)
        # a slash in the collection is no route at all (no file of either node answered)
        reply = await http.get(f"{origin}/web/datacube-quicklooks/b/datacube-..%2F..%2Fnode_key")
        assert reply.status_code == 404, reply.text
        assert await state() == before
