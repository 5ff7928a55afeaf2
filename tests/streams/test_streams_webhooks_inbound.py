"""``POST /webhooks/{source}`` on a node's real HTTP edge: Standard Webhooks signatures
made with the ``standardwebhooks`` package as a provider would, every hostile case
refused with a message naming the bad value and nothing published, redeliveries
publishing nothing new (also after a restart), STAC items becoming ``SceneAnnounced``."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from gravitas.schemas.codec import decode
from gravitas.schemas.events import Ping, SceneAnnounced
from gravitas.schemas.settings import Settings, load_settings
from gravitas.streams.node import EmbeddedNode
from gravitas.streams.webhooks.signing import new_secret, source_secret_path

SOURCES = {
    "provider": {"topics": ["scenes.new", "ops.ping"], "collection": "provider-scenes"},
    "pinger": {"topics": ["ops.ping"]},
}


def _settings(tmp: Path) -> Settings:
    return load_settings(
        data_dir=tmp / "node",
        http_port=0,
        broker="memory://",
        agents=["ping"],
        webhook_sources=SOURCES,
        webhook_max_body_bytes=4096,
        allowed_url_prefixes=("https://data.example.org/scenes/",),
    )


def _records(node: EmbeddedNode, topic: str) -> list[bytes]:
    name = node.topology.physical(topic)
    out: list[bytes] = []
    for p in range(node.bus.partitions(name)):
        out += [r.value for r in node.bus.read(name, p, 0, 100_000)]
    return out


def _signed(
    secret: str, body: bytes, msg_id: str | None = None, at: float | None = None
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = datetime.fromtimestamp(int(time.time() if at is None else at), tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, stamp, body.decode()),
        "content-type": "application/json",
    }


def _item(href: str = "https://data.example.org/scenes/s1/B04.tif") -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "S2B_T32TQM_20240601",
        "bbox": [10.0, 45.0, 11.0, 46.0],
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[10, 45], [11, 45], [11, 46], [10, 46], [10, 45]]],
        },
        "properties": {"datetime": "2024-06-01T10:20:30Z"},
        "assets": {
            "B04": {"href": href, "type": "image/tiff", "roles": ["data"]},
            "thumbnail": {"href": "https://elsewhere.example/t.png", "roles": ["thumbnail"]},
        },
        "links": [],
    }


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[EmbeddedNode]:
    async with EmbeddedNode(_settings(tmp_path)) as n:
        yield n


def _secret(node: EmbeddedNode, source: str) -> str:
    path = source_secret_path(node.settings, source)
    assert path.stat().st_mode & 0o077 == 0  # generated owner-only, like the edge token
    return path.read_text().strip()


async def test_signed_stac_item_becomes_one_scene_and_redelivery_publishes_nothing(
    node: EmbeddedNode,
) -> None:
    secret = _secret(node, "provider")
    body = orjson.dumps(_item())
    headers = _signed(secret, body, msg_id="msg_stac_1")
    async with httpx.AsyncClient(base_url=node.edge_url or "") as http:
        first = await http.post("/webhooks/provider", content=body, headers=headers)
        assert first.status_code == 200, first.text
        assert first.json()["published"] == 1 and first.json()["duplicate"] is False
        again = await http.post("/webhooks/provider", content=body, headers=headers)
        assert again.status_code == 200, again.text
        assert again.json() == {**first.json(), "duplicate": True, "published": 0}
    records = _records(node, "scenes.new")
    assert len(records) == 1
    scene = decode(records[0], [SceneAnnounced])
    assert isinstance(scene, SceneAnnounced)
    assert str(scene.event_id) == first.json()["event_id"]
    assert scene.scene_id == "S2B_T32TQM_20240601"
    assert scene.collection == "provider-scenes"
    assert scene.hrefs == ["https://data.example.org/scenes/s1/B04.tif"]
    assert scene.band_names == ["b04"]
    assert scene.bbox == (10.0, 45.0, 11.0, 46.0)
    assert scene.datetime == datetime(2024, 6, 1, 10, 20, 30, tzinfo=UTC)
    metrics = (await httpx.AsyncClient().get(f"{node.edge_url}/metrics")).text
    assert 'gravitas_webhooks_received_total{outcome="published",source="provider"} 1.0' in metrics
    assert 'gravitas_webhooks_received_total{outcome="duplicate",source="provider"} 1.0' in metrics


async def test_an_event_payload_is_published_on_the_named_topic(node: EmbeddedNode) -> None:
    secret = _secret(node, "pinger")
    body = orjson.dumps({"type": Ping.TYPE, "request_id": "hook-ping-1"})
    async with httpx.AsyncClient(base_url=node.edge_url or "") as http:
        reply = await http.post(
            "/webhooks/pinger", params={"topic": "ops.ping"}, content=body,
            headers=_signed(secret, body),
        )  # fmt: skip
    assert reply.status_code == 200, reply.text
    (record,) = _records(node, "ops.ping")
    ping = decode(record, [Ping])
    assert isinstance(ping, Ping) and ping.request_id == "hook-ping-1"
    assert str(ping.event_id) == reply.json()["event_id"]


async def test_redelivery_after_a_restart_publishes_nothing(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    body = orjson.dumps({"type": Ping.TYPE, "request_id": "hook-ping-restart"})
    async with EmbeddedNode(settings) as node:
        secret = _secret(node, "pinger")
        headers = _signed(secret, body, msg_id="msg_restart")
        async with httpx.AsyncClient(base_url=node.edge_url or "") as http:
            first = await http.post(
                "/webhooks/pinger?topic=ops.ping", content=body, headers=headers
            )
        assert first.json()["published"] == 1
    async with EmbeddedNode(settings) as node:
        assert _secret(node, "pinger") == secret  # the secret file survives too
        async with httpx.AsyncClient(base_url=node.edge_url or "") as http:
            again = await http.post(
                "/webhooks/pinger?topic=ops.ping", content=body, headers=headers
            )
        assert again.status_code == 200, again.text
        assert again.json()["duplicate"] is True
        assert again.json()["event_id"] == first.json()["event_id"]
        assert _records(node, "ops.ping") == []


def _hostile_cases(secret: str) -> list[tuple[str, str, dict[str, str], bytes, int, str]]:
    """(name, path, headers, body, status, text the answer must contain)."""
    item = orjson.dumps(_item())
    ping = orjson.dumps({"type": Ping.TYPE, "request_id": "evil"})
    other = new_secret().decode()
    no_sig = {k: v for k, v in _signed(secret, item).items() if k != "webhook-signature"}
    tampered = _signed(secret, item)
    old = _signed(secret, item, at=time.time() - 301)
    future = _signed(secret, item, at=time.time() + 400)
    bad_json = b'{"type": "Feature", '
    big = b'{"pad": "' + b"x" * 5000 + b'"}'
    outside = orjson.dumps(_item("http://169.254.169.254/latest/meta-data"))
    step = SceneAnnounced(  # a forged answer to a workflow's register step
        scene_id="s1", collection="c", hrefs=["https://data.example.org/scenes/s1/B04.tif"],
        mode="lazy", request_id="run-1.a0.reg", reply_topic="workflows.runs",
    ).model_dump(mode="json", exclude={"event_id"})  # fmt: skip
    forged = orjson.dumps(step)
    return [
        ("bad signature", "/webhooks/provider", _signed(other, item), item, 401,
         "webhook-signature does not match"),
        ("tampered body", "/webhooks/provider", tampered, item.replace(b"S2B", b"S2A"), 401,
         "webhook-signature does not match"),
        ("missing signature", "/webhooks/provider", no_sig, item, 400, "webhook-signature"),
        ("no headers", "/webhooks/provider", {"content-type": "application/json"}, item, 400,
         "webhook-id, webhook-timestamp, webhook-signature"),
        ("old timestamp", "/webhooks/provider", old, item, 401, "s old"),
        ("future timestamp", "/webhooks/provider", future, item, 401, "in the future"),
        ("timestamp not a number", "/webhooks/provider",
         {**_signed(secret, item), "webhook-timestamp": "yesterday"}, item, 400, "'yesterday'"),
        ("garbled signature", "/webhooks/provider",
         {**_signed(secret, item), "webhook-signature": "v1"}, item, 401, "webhook-signature"),
        ("unknown source", "/webhooks/mallory", _signed(secret, item), item, 404, "'mallory'"),
        ("topic not allowed", "/webhooks/pinger?topic=scenes.new", _signed(secret, ping), ping,
         401, "webhook-signature"),  # pinger's own secret differs: refused before the topic
        ("oversize body", "/webhooks/provider", _signed(secret, big), big, 413,
         "GRAVITAS_WEBHOOK_MAX_BODY_BYTES"),
        ("malformed JSON", "/webhooks/provider", _signed(secret, bad_json), bad_json, 422,
         "not JSON"),
        ("href outside the policy", "/webhooks/provider", _signed(secret, outside), outside, 422,
         "http://169.254.169.254/latest/meta-data"),
        ("not an event of the topic", "/webhooks/provider?topic=ops.ping",
         _signed(secret, b'{"type": "datacube.requested"}'), b'{"type": "datacube.requested"}',
         422, "'datacube.requested'"),
        ("topic off the allow-list", "/webhooks/provider?topic=requests.datacube",
         _signed(secret, ping), ping, 403, "'requests.datacube' is not allowed"),
        ("answers a workflow step", "/webhooks/provider?topic=scenes.new",
         _signed(secret, forged), forged, 403, "reply_topic 'workflows.runs'"),
    ]  # fmt: skip


async def test_every_hostile_call_is_refused_naming_the_problem_and_publishes_nothing(
    node: EmbeddedNode,
) -> None:
    secret = _secret(node, "provider")
    topics = ["scenes.new", "ops.ping", "requests.datacube"]
    before = {t: len(_records(node, t)) for t in topics}
    async with httpx.AsyncClient(base_url=node.edge_url or "") as http:
        for name, path, headers, body, status, text in _hostile_cases(secret):
            reply = await http.post(path, content=body, headers=headers)
            assert reply.status_code == status, (name, reply.text)
            assert text in reply.json()["detail"], (name, reply.json())
    assert {t: len(_records(node, t)) for t in topics} == before
    seen = node.settings.data_dir / "webhooks.sqlite"
    import sqlite3

    with sqlite3.connect(seen) as db:
        assert db.execute("SELECT COUNT(*) FROM seen").fetchone()[0] == 0


async def test_pinger_topic_allow_list(node: EmbeddedNode) -> None:
    secret = _secret(node, "pinger")
    item = orjson.dumps(_item())
    async with httpx.AsyncClient(base_url=node.edge_url or "") as http:
        reply = await http.post("/webhooks/pinger", content=item, headers=_signed(secret, item))
    assert reply.status_code == 403
    assert "'scenes.new' is not allowed for source 'pinger'" in reply.json()["detail"]
    assert _records(node, "scenes.new") == []
