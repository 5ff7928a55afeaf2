"""The web page's routes on an embedded node (real HTTP): the page with its
Content-Security-Policy, static files confined to their folder, the Natural Earth
outlines equal to the shapefile read independently (pyogrio), the catalog footprints,
and the live pipeline over server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pyogrio
import pytest
import shapely

from gravitas.schemas.events import Ping
from gravitas.schemas.settings import load_settings
from gravitas.storage.sampledata import fetch
from gravitas.streams.node import EmbeddedNode
from gravitas.streams.web.page import STATIC_DIR


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[EmbeddedNode]:
    settings = load_settings(data_dir=tmp_path / "node", http_port=0, broker="memory://")
    async with EmbeddedNode(settings, serve_http=True) as n:
        yield n


async def test_page_and_static_files(node: EmbeddedNode) -> None:
    async with httpx.AsyncClient(base_url=node.edge_url or "", timeout=60) as http:
        page = await http.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "connect-src 'self'" in csp
        assert 'src="/static/vendor/leaflet/leaflet.js"' in page.text
        assert "http://" not in page.text and "https://" not in page.text
        js = await http.get("/static/app.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
        assert js.content == (STATIC_DIR / "app.js").read_bytes()
        before = sorted(p.name for p in STATIC_DIR.iterdir())
        for hostile in ("../page.py", "..%2Fpage.py", "%2e%2e/%2e%2e/pyproject.toml",
                        "/etc/passwd", "app.js%00.png", "nosuch.js"):  # fmt: skip
            r = await http.get(f"/static/{hostile}")
            assert r.status_code == 404, (hostile, r.status_code)
            assert b"def page_router" not in r.content and b"[project]" not in r.content
        assert sorted(p.name for p in STATIC_DIR.iterdir()) == before


async def test_country_outlines_equal_the_shapefile(node: EmbeddedNode) -> None:
    folder = fetch("naturalearth_lowres")
    _m, _f, geoms, fields = pyogrio.raw.read(folder / "naturalearth_lowres.shp", columns=["name"])
    shapes = shapely.from_wkb(geoms)
    async with httpx.AsyncClient(base_url=node.edge_url or "", timeout=60) as http:
        r = await http.get("/web/countries.geojson")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    fc = orjson.loads(r.content)
    assert [f["properties"]["name"] for f in fc["features"]] == [str(n) for n in fields[0]]
    for feature, shape in zip(fc["features"], shapes, strict=True):
        got = shapely.geometry.shape(feature["geometry"])
        assert shapely.equals_exact(got, shape, tolerance=1e-9)


async def test_footprints_and_live_pipeline(node: EmbeddedNode) -> None:
    async with httpx.AsyncClient(base_url=node.edge_url or "", timeout=60) as http:
        fc = (await http.get("/web/footprints")).json()
        assert fc["type"] == "FeatureCollection" and fc["this_node"] == node.settings.node_id
        events: list[str] = []
        async with http.stream("GET", "/web/live", params={"interval": "0.5"}) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            sent = False
            async for line in resp.aiter_lines():
                if line.startswith("event:"):
                    events.append(line.split(":", 1)[1].strip())
                if line.startswith("data:") and events[-1] == "pipeline" and not sent:
                    snap = orjson.loads(line[5:])
                    assert {t["name"] for t in snap["topics"]} >= {"ops.ping", "deadletter"}
                    await node.client().publish(Ping(request_id="live-ping"))
                    sent = True
                if line.startswith("data:") and events[-1] == "event":
                    ev = orjson.loads(line[5:])
                    if ev["topic"] == "ops.ping" and ev["key"] == "live-ping":
                        break
    assert "pipeline" in events and "event" in events
