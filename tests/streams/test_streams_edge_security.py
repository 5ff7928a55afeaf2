"""The HTTP edge under attack: a real embedded node (every agent) with its edge on
127.0.0.1, attacked with missing and wrong tokens on every publishing, tailing and
transaction route, publishes to internal topics, foreign-origin, foreign-Host (DNS
rebinding) and ``text/plain`` (CSRF-style) requests, and oversized bodies on every
route (declared, and streamed chunk by chunk over a raw socket). Each is refused with a
clear message, the node stays up, and nothing stored changed: catalog, blocks, objects,
directory and every topic.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gravitas.schemas.codec import decode
from gravitas.schemas.events import Ping, Pong, Rejected
from gravitas.schemas.settings import load_settings
from gravitas.streams.node import EmbeddedNode
from tests.fixtures.state import fingerprint

LIMIT = 64 * 1024
INTERNAL = [
    "onboard.requests",
    "pixels.indexed",
    "overviews.updated",
    "methane.enhanced",
    "datacubes.ready",
    "discovery.results",
    "stac.registrations",
    "progress",
    "ops.pong",
    "deadletter",
]
ITEM = {
    "type": "Feature",
    "stac_version": "1.0.0",
    "id": "forged",
    "collection": "c1",
    "geometry": {"type": "Point", "coordinates": [1.0, 2.0]},
    "bbox": [1.0, 2.0, 1.0, 2.0],
    "properties": {"datetime": "2024-01-01T00:00:00Z"},
    "links": [],
    "assets": {},
}
COLLECTION = {
    "type": "Collection",
    "id": "c1",
    "stac_version": "1.0.0",
    "description": "c",
    "license": "proprietary",
    "extent": {
        "spatial": {"bbox": [[-180, -90, 180, 90]]},
        "temporal": {"interval": [[None, None]]},
    },
    "links": [],
}
# (method, path, json body) of every route that publishes, tails or transacts.
GUARDED: list[tuple[str, str, Any]] = [
    ("POST", "/topics/ops.ping/events", {"request_id": "x"}),
    ("POST", "/topics/ops.ping/records", {"request_id": "x"}),
    ("GET", "/topics/deadletter/events", None),
    ("POST", "/rpc/ops.ping", {"request_id": "x"}),
    ("POST", "/stac/collections", COLLECTION),
    ("PUT", "/stac/collections/c0", {**COLLECTION, "id": "c0"}),
    ("DELETE", "/stac/collections/c0", None),
    ("POST", "/stac/collections/c0/items", {**ITEM, "collection": "c0"}),
    ("PUT", "/stac/collections/c0/items/i0", {**ITEM, "id": "i0", "collection": "c0"}),
    ("DELETE", "/stac/collections/c0/items/i0", None),
]
WRITES = [g for g in GUARDED if g[0] != "GET"]
COUNTS: dict[str, int] = {}


def count(kind: str, n: int = 1) -> None:
    """Tally the hostile cases (reported in docs/reliability.md)."""
    COUNTS[kind] = COUNTS.get(kind, 0) + n


def topic_contents(node: EmbeddedNode) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for topic in node.topology.names:
        name = node.topology.physical(topic)
        out[topic] = [
            rec.value
            for p in range(node.bus.partitions(name))
            for rec in node.bus.read(name, p, 0, 1_000_000)
        ]
    return out


class Edge:
    def __init__(self, node: EmbeddedNode, http: httpx.AsyncClient, token: str) -> None:
        self.node = node
        self.http = http
        self.token = token
        assert node.edge is not None
        self.host = node.edge.host
        self.port = node.edge.port

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def state(self) -> tuple[str, dict[str, list[bytes]]]:
        return fingerprint(self.node.services), topic_contents(self.node)

    async def raw(self, head: bytes, chunks: list[bytes] | None = None) -> tuple[int, bytes, int]:
        """Send a request over a raw socket; returns (status, body, chunks sent before
        the answer came)."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(head)
        await writer.drain()
        sent = 0
        answer = asyncio.ensure_future(reader.read(65536))
        for chunk in chunks or []:
            if answer.done():
                break
            try:
                writer.write(chunk)
                await writer.drain()
            except ConnectionError:
                break
            sent += 1
            await asyncio.sleep(0)
        data = await asyncio.wait_for(answer, 30)
        writer.close()
        status = int(data.split(b" ", 2)[1])
        return status, data.split(b"\r\n\r\n", 1)[-1], sent


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    settings = load_settings(
        data_dir=tmp_path / "node", http_port=0, node_id="guarded", max_body_bytes=LIMIT
    )
    async with EmbeddedNode(settings) as node:
        token = (settings.data_dir / "api_token").read_text().strip()
        for secret in ("api_token", "node_key"):  # made on first start, owner-only
            assert (settings.data_dir / secret).stat().st_mode & 0o777 == 0o600
        async with httpx.AsyncClient(base_url=node.edge_url or "", timeout=30) as http:
            # one collection with one item, published properly, so forgeries have a target
            auth = {"Authorization": f"Bearer {token}"}
            resp = await http.post(
                "/stac/collections", json={**COLLECTION, "id": "c0"}, headers=auth
            )
            assert resp.status_code == 201, resp.text
            item = {**ITEM, "id": "i0", "collection": "c0"}
            resp = await http.post("/stac/collections/c0/items", json=item, headers=auth)
            assert resp.status_code == 201, resp.text
            yield Edge(node, http, token)


async def _still_serving(edge: Edge) -> None:
    assert (await edge.http.get("/healthz")).status_code == 200
    reply = await edge.node.client().request(Ping(request_id="alive"), "ops.pong", timeout=30)
    assert isinstance(reply, Pong)


async def test_token_origin_csrf_and_internal_topics_are_refused(edge: Edge) -> None:
    before = edge.state()
    http = edge.http
    for method, path, body in GUARDED:
        for headers, what in (
            ({}, "needs the node's token"),
            ({"Authorization": "Bearer wrong"}, "wrong bearer token"),
            ({"Authorization": "Basic Zm9vOmJhcg=="}, "wrong bearer token"),
        ):
            resp = await http.request(method, path, json=body, headers=headers)
            assert resp.status_code == 401, (method, path, resp.text)
            assert what in resp.text, (method, path, resp.text)
            count("token missing/wrong")
    for topic in INTERNAL:
        line = orjson.dumps({"request_id": "x"})
        for route in (f"/topics/{topic}/events", f"/topics/{topic}/records", f"/rpc/{topic}"):
            resp = await http.post(
                route, content=line, headers={**edge.auth, "Content-Type": "application/json"}
            )
            assert resp.status_code == 403, (route, resp.text)
            assert f"topic {topic!r} is internal" in resp.json()["detail"]
            count("internal topic")
    for method, path, body in GUARDED:
        for origin in ("https://evil.example", "null", f"http://127.0.0.1:{edge.port + 1}"):
            resp = await http.request(
                method, path, json=body, headers={**edge.auth, "Origin": origin}
            )
            assert resp.status_code == 403, (method, path, origin, resp.text)
            assert "cross-origin" in resp.text and origin in resp.text
            count("foreign origin")
        pre = await http.options(
            path,
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": method},
        )
        assert pre.status_code == 403 and "access-control-allow-origin" not in pre.headers
        count("CORS preflight")
    for method, path, body in WRITES:
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            resp = await http.request(
                method,
                path,
                content=orjson.dumps(body) if body else b"",
                headers={**edge.auth, "Content-Type": ctype},
            )
            assert resp.status_code == 415, (method, path, ctype, resp.text)
            assert ctype in resp.json()["detail"]
            count("CSRF content type")
    # DNS rebinding: a page's own name resolved to 127.0.0.1 is not this node
    for method, path, body in [*GUARDED, ("GET", "/stac/collections", None)]:
        rebound = f"rebound.example:{edge.port}"
        resp = await http.request(
            method,
            path,
            json=body,
            headers={**edge.auth, "Host": rebound, "Origin": f"http://{rebound}"},
        )
        assert resp.status_code == 403, (method, path, resp.text)
        assert f"Host {rebound!r} is not this node" in resp.text
        count("foreign Host (DNS rebinding)")
    # the public reads stay public, the STAC API for any origin
    stac = await http.get("/stac/collections", headers={"Origin": "https://viewer.example"})
    assert stac.status_code == 200 and stac.headers["access-control-allow-origin"] == "*"
    assert (await http.get("/stac/collections/c0/items/i0")).status_code == 200
    assert edge.state() == before
    await _still_serving(edge)


async def test_oversized_bodies_are_refused_while_streaming(edge: Edge) -> None:
    before = edge.state()
    routes = [(m, p) for m, p, _ in WRITES] + [("POST", "/stac/search")]
    for method, path in routes:
        # declared too large: refused before one byte of the body is read (300 MB)
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {edge.host}:{edge.port}\r\n"
            f"Authorization: Bearer {edge.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {300 * 1024 * 1024}\r\n\r\n"
        ).encode()
        status, body, _ = await edge.raw(head)
        assert status == 413, (method, path, body)
        assert b"exceeds the limit of 65536 bytes" in body
        count("oversized (declared)")
        # chunked, no length: cut off once the limit is passed, long before the end
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {edge.host}:{edge.port}\r\n"
            f"Authorization: Bearer {edge.token}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
        piece = b"x" * 16384
        chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * 2000  # 32 MB if it were all read
        status, body, sent = await edge.raw(head, chunks)
        if method == "DELETE":
            assert status == 400 and b"takes no request body" in body, (path, body)
        else:
            assert status == 413, (method, path, body)
            assert b"passed the limit of 65536 bytes while streaming" in body
        assert sent < 200, f"{sent} chunks of 16 KiB were sent before the 413"
        count("oversized (streamed)")
    assert edge.state() == before
    await _still_serving(edge)


async def test_raw_records_dead_letter_bad_lines_with_the_reason(edge: Edge) -> None:
    before_catalog = fingerprint(edge.node.services)
    resp = await edge.http.post(
        "/topics/ops.ping/records",
        content=b'{"request_id": "ok-1"}\nnot json\n{"request_id": ""}\n',
        headers={**edge.auth, "Content-Type": "application/x-ndjson"},
    )
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["published"] == 1
    assert [r["line"] for r in answer["rejected"]] == [2, 3]
    dead = [decode(v, [Rejected]) for v in topic_contents(edge.node)["deadletter"]]
    by_id = {str(d.event_id): d for d in dead if isinstance(d, Rejected)}
    first = by_id[answer["rejected"][0]["rejected_id"]]
    assert first.payload() == b"not json" and first.agent == "edge"
    assert first.reason.startswith("line 2: ") and "JSON" in first.reason
    assert fingerprint(edge.node.services) == before_catalog


def test_secret_files_readable_by_others_are_refused(tmp_path: Path) -> None:
    from gravitas.schemas.errors import ConfigError
    from gravitas.storage.secrets import secret_file

    path = tmp_path / "api_token"
    first = secret_file(path, lambda: b"one")
    assert secret_file(path, lambda: b"two") == first == b"one"  # created once
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"accessible by other users .*chmod 600"):
        secret_file(path, lambda: b"three")
    assert path.read_bytes().strip() == b"one"
