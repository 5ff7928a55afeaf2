"""CloudEvents both ways, still under Standard Webhooks signatures.

Inbound (an embedded node's real HTTP edge): binary and structured CloudEvents made with
the ``cloudevents`` SDK become events, a redelivery publishes nothing, and every hostile
CloudEvent (bad specversion, a missing id/source/type, a wrong content type, batch mode,
oversize, unsigned or tampered) is refused naming the bad value with nothing published
and nothing recorded. Outbound (the real Kafka broker): subscriptions with
``format: cloudevents`` in binary and structured mode deliver to a real HTTP receiver
that verifies the signature and parses each call with the SDK's ``from_http``."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from standardwebhooks.webhooks import Webhook

from gravitas.schemas.codec import decode
from gravitas.schemas.events import Ping, SceneAnnounced
from gravitas.schemas.settings import Settings, load_settings
from gravitas.streams.broker import KafkaBroker, create_topics
from gravitas.streams.edge.app import EdgeContext, create_app
from gravitas.streams.edge.server import EdgeServer
from gravitas.streams.metrics import NodeMetrics
from gravitas.streams.node import EmbeddedNode
from gravitas.streams.topology import Topology
from gravitas.streams.transports.kafka import KafkaTransport
from gravitas.streams.webhooks.api import subscriptions_router
from gravitas.streams.webhooks.signing import source_secret_path
from gravitas.streams.webhooks.worker import DeliveryWorker

SOURCES = {"provider": {"topics": ["scenes.new", "ops.ping"], "collection": "provider-scenes"}}
FORMAT = JSONFormat()
TOKEN = "test-token-cloudevents"


def _item() -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "S2B_CE_20240601",
        "bbox": [10.0, 45.0, 11.0, 46.0],
        "geometry": None,
        "properties": {"datetime": "2024-06-01T10:20:30Z"},
        "assets": {
            "B04": {
                "href": "https://data.example.org/scenes/ce/B04.tif",
                "type": "image/tiff",
                "roles": ["data"],
            }
        },
        "links": [],
    }


def _signed(secret: str, body: bytes, msg_id: str | None = None) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    now = datetime.fromtimestamp(int(time.time()), tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode()),
    }


def _ce(data: Any, **attrs: Any) -> CloudEvent:
    base = {"id": f"ce-{uuid.uuid4().hex[:8]}", "source": "/provider/feed", "type": "org.example"}
    return CloudEvent({**base, "datacontenttype": "application/json", **attrs}, data)


def _binary(secret: str, ce: CloudEvent, msg_id: str | None = None) -> tuple[dict[str, str], bytes]:
    message = to_binary(ce, FORMAT)
    return {**message.headers, **_signed(secret, message.body, msg_id)}, message.body


def _structured(secret: str, doc: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    body = orjson.dumps(doc)
    return {"content-type": "application/cloudevents+json", **_signed(secret, body)}, body


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[EmbeddedNode]:
    settings = load_settings(
        data_dir=tmp_path / "node",
        http_port=0,
        broker="memory://",
        agents=["ping"],
        webhook_sources=SOURCES,
        webhook_max_body_bytes=4096,
        allowed_url_prefixes=("https://data.example.org/scenes/",),
    )
    async with EmbeddedNode(settings) as n:
        yield n


def _records(node: EmbeddedNode, topic: str) -> list[bytes]:
    name = node.topology.physical(topic)
    out: list[bytes] = []
    for p in range(node.bus.partitions(name)):
        out += [r.value for r in node.bus.read(name, p, 0, 100_000)]
    return out


def _seen_rows(node: EmbeddedNode) -> int:
    path = node.settings.data_dir / "webhooks.sqlite"
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM seen").fetchone()[0])


async def test_inbound_cloudevents_binary_and_structured_become_events(node: EmbeddedNode) -> None:
    secret = source_secret_path(node.settings, "provider").read_text().strip()
    scene_headers, scene_body = _binary(secret, _ce(_item()), msg_id="msg_ce_scene")
    ping_ce = _ce({"request_id": "ce-ping-1"}, type="org.gravitas.ops.ping")
    ping_msg = to_structured(ping_ce, FORMAT)
    ping_headers = {**ping_msg.headers, **_signed(secret, ping_msg.body)}
    async with httpx.AsyncClient(base_url=node.edge_url or "") as http:
        first = await http.post("/webhooks/provider", content=scene_body, headers=scene_headers)
        assert first.status_code == 200, first.text
        again = await http.post("/webhooks/provider", content=scene_body, headers=scene_headers)
        assert again.json() == {**first.json(), "duplicate": True, "published": 0}
        ping = await http.post(
            "/webhooks/provider?topic=ops.ping", content=ping_msg.body, headers=ping_headers
        )
        assert ping.status_code == 200, ping.text
    (record,) = _records(node, "scenes.new")
    scene = decode(record, [SceneAnnounced])
    assert isinstance(scene, SceneAnnounced)
    assert scene.scene_id == "S2B_CE_20240601" and scene.collection == "provider-scenes"
    assert scene.hrefs == ["https://data.example.org/scenes/ce/B04.tif"]
    assert str(scene.event_id) == first.json()["event_id"]
    pings = [decode(r, [Ping]) for r in _records(node, "ops.ping")]
    assert [p.request_id for p in pings if isinstance(p, Ping)] == ["ce-ping-1"]


def _hostile(secret: str) -> list[tuple[str, dict[str, str], bytes, int, str]]:
    """(name, headers, body, status, text the refusal must contain)."""
    item = _item()
    good = {
        "specversion": "1.0", "id": "ce-1", "source": "/feed", "type": "org.example",
        "datacontenttype": "application/json", "data": item,
    }  # fmt: skip
    bin_h, bin_b = _binary(secret, _ce(item))
    drop = {k: v for k, v in bin_h.items() if k != "ce-id"}
    big = _ce({**item, "pad": "x" * 5000})
    return [
        ("binary bad specversion", {**bin_h, "ce-specversion": "0.3"}, bin_b, 422, "'0.3'"),
        ("structured bad specversion", *_structured(secret, {**good, "specversion": "2.0"}),
         422, "'2.0'"),
        ("binary missing id", {**drop, **_signed(secret, bin_b)}, bin_b, 422, "'id'"),
        ("structured missing source",
         *_structured(secret, {k: v for k, v in good.items() if k != "source"}), 422, "'source'"),
        ("structured empty type", *_structured(secret, {**good, "type": " "}), 422, "'type'"),
        ("binary wrong content-type", {**bin_h, "content-type": "text/xml"}, bin_b, 415,
         "'text/xml'"),
        ("structured non-JSON data",
         *_structured(secret, {**good, "datacontenttype": "text/plain", "data": "hi"}), 415,
         "'text/plain'"),
        ("batch mode", {**_signed(secret, b"[]"),
                        "content-type": "application/cloudevents-batch+json"}, b"[]", 415,
         "batch"),
        ("data not an object", *_structured(secret, {**good, "data": [1, 2]}), 422,
         "data must be a JSON object"),
        ("base64 data", *_structured(secret, {**{k: v for k, v in good.items() if k != "data"},
                                              "data_base64": "AAAA"}), 422, "data_base64"),
        ("oversize", *_binary(secret, big), 413, "GRAVITAS_WEBHOOK_MAX_BODY_BYTES"),
        ("unsigned", {k: v for k, v in bin_h.items() if not k.startswith("webhook-")}, bin_b,
         400, "webhook-id"),
        ("tampered", bin_h, bin_b.replace(b"S2B", b"S2A"), 401, "webhook-signature"),
    ]  # fmt: skip


async def test_hostile_cloudevents_are_refused_and_nothing_is_stored(node: EmbeddedNode) -> None:
    secret = source_secret_path(node.settings, "provider").read_text().strip()
    async with httpx.AsyncClient(base_url=node.edge_url or "") as http:
        for name, headers, body, status, text in _hostile(secret):
            reply = await http.post("/webhooks/provider", content=body, headers=headers)
            assert reply.status_code == status, (name, reply.text)
            assert text in reply.json()["detail"], (name, reply.json())
    assert _records(node, "scenes.new") == [] and _records(node, "ops.ping") == []
    assert _seen_rows(node) == 0


# ---------------------------------------------------------------- outbound (Kafka)


class Receiver:
    """A real HTTP server that verifies each call's signature and parses it with the
    CloudEvents SDK (``from_http``: binary or structured, as the call says)."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.got: list[tuple[str, CloudEvent, dict[str, str]]] = []
        self.lock = threading.Lock()
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = 401
                try:
                    Webhook(rec.secrets[self.path]).verify(body, headers, json_parse=False)
                    event = from_http(HTTPMessage(headers=headers, body=body), FORMAT)
                    assert isinstance(event, CloudEvent)
                    with rec.lock:
                        rec.got.append((self.path, event, headers))
                    status = 200
                except Exception:
                    status = 400
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    thread = threading.Thread(target=rec.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        rec.server.shutdown()
        rec.server.server_close()


@pytest.mark.kafka
@pytest.mark.slow
async def test_outbound_cloudevents_binary_and_structured_parse_with_the_sdk(
    kafka_broker: KafkaBroker, tmp_path: Path, receiver: Receiver
) -> None:
    bootstrap = kafka_broker.bootstrap
    prefix = f"t{uuid.uuid4().hex[:10]}."
    topology = Topology(prefix=prefix, partitions=2, federation_prefix=prefix)
    await create_topics(bootstrap, topology.partition_counts())
    settings: Settings = load_settings(
        broker=f"kafka://{bootstrap}", topic_prefix=prefix, federation_prefix=prefix,
        data_dir=tmp_path / "node", group_id=f"g-{prefix}", api_token=TOKEN, node_id="ce-node",
        webhook_retry_schedule_s=(0.3,), webhook_timeout_s=2.0,
        allowed_url_prefixes=(f"{receiver.url}/",),
    )  # fmt: skip
    auth = {"authorization": f"Bearer {TOKEN}"}
    transport = KafkaTransport(settings.broker, topology)
    ctx = EdgeContext(settings, topology, transport, NodeMetrics(), [], token=TOKEN)
    server = EdgeServer(create_app(ctx, [subscriptions_router(ctx)]), "127.0.0.1", 0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            bad = await http.post(
                "/subscriptions",
                json={"topic": "ops.ping", "url": f"{receiver.url}/x", "format": "xml"},
                headers=auth,
            )
            assert bad.status_code == 422 and "format" in bad.json()["detail"], bad.text
            assert (await http.get("/subscriptions", headers=auth)).json()["subscriptions"] == []
            for mode in ("binary", "structured"):
                reply = await http.post(
                    "/subscriptions",
                    json={"topic": "ops.ping", "url": f"{receiver.url}/{mode}",
                          "format": "cloudevents", "content_mode": mode},
                    headers=auth,
                )  # fmt: skip
                assert reply.status_code == 201, reply.text
                assert reply.json()["format"] == "cloudevents"
                receiver.secrets[f"/{mode}"] = reply.json()["secret"]
    finally:
        await server.stop()

    worker = DeliveryWorker(settings, topology, NodeMetrics())
    task = asyncio.create_task(worker.run())
    try:
        ping = Ping(request_id="ce-out-1", node_id="ce-node")
        from gravitas.schemas.codec import encode

        await transport.publish("ops.ping", ping.key().encode(), encode(ping))
        deadline = time.monotonic() + 30
        while len(receiver.got) < 2:
            assert time.monotonic() < deadline, receiver.got
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await transport.close()
    by_path = {path: (event, headers) for path, event, headers in receiver.got}
    assert set(by_path) == {"/binary", "/structured"}
    expected = orjson.loads(encode(ping))
    for path, (event, headers) in by_path.items():
        assert event.get_specversion() == "1.0"
        assert event.get_id() == headers["webhook-id"]  # the signed idempotency id
        assert event.get_type() == "org.gravitas.ops.ping"
        assert event.get_source() == "/gravitas/nodes/ce-node/topics/ops.ping"
        assert event.get_subject() == "ce-out-1"
        assert event.get_data() == expected, path
    assert by_path["/binary"][1]["content-type"] == "application/json"
    assert "ce-id" in by_path["/binary"][1]
    assert by_path["/structured"][1]["content-type"] == "application/cloudevents+json"
    assert not any(k.startswith("ce-") for k in by_path["/structured"][1])
