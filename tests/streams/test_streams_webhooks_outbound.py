"""Outbound webhooks on the real Kafka broker, delivered to a real HTTP receiver on
loopback that verifies every Standard Webhooks signature: retries on the (shortened)
schedule, 410 disabling the subscription, a hanging receiver timed out and
dead-lettered, subscriptions made through the edge's HTTP API under the token and the
URL policy, and a worker SIGKILLed mid-delivery re-delivering with the same webhook-id."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gravitas.schemas.codec import encode
from gravitas.schemas.events import Ping
from gravitas.schemas.settings import Settings, load_settings
from gravitas.streams.broker import KafkaBroker, create_topics
from gravitas.streams.edge.app import EdgeContext, create_app
from gravitas.streams.edge.server import EdgeServer
from gravitas.streams.metrics import NodeMetrics
from gravitas.streams.topology import Topology
from gravitas.streams.transports.kafka import KafkaTransport
from gravitas.streams.webhooks.api import subscriptions_router
from gravitas.streams.webhooks.store import SubscriptionLog
from gravitas.streams.webhooks.worker import DeliveryWorker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
TOKEN = "test-token-outbound"


@dataclass
class Hit:
    path: str
    webhook_id: str
    verified: bool
    body: bytes
    status: int


@dataclass
class Receiver:
    """A real HTTP server: /ok, /flaky (500 twice, then 200), /gone (410), /hang (sleeps
    past the timeout), /slow (answers once ``gate`` opens), /fail (always 500). It verifies the
    signature with the secret registered for the path and answers 401 when it fails."""

    url: str = ""
    secrets: dict[str, str] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    gate: threading.Event = field(default_factory=threading.Event)

    def of(self, path: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            path = self.path
            msg_id = self.headers.get("webhook-id", "")
            with rec.lock:
                rec.started.append(msg_id)
            secret = rec.secrets.get(path)
            verified = False
            if secret is not None:
                try:
                    Webhook(secret).verify(body, dict(self.headers.items()), json_parse=False)
                    verified = True
                except WebhookVerificationError:
                    verified = False
            earlier = len(rec.of(path))
            if not verified:
                status = 401
            elif path == "/flaky":
                status = 500 if earlier < 2 else 200
            elif path == "/gone":
                status = 410
            elif path == "/fail":
                status = 500
            elif path == "/hang":
                time.sleep(3)
                status = 200
            elif path == "/slow":
                rec.gate.wait(60)
                status = 200
            else:
                status = 200
            with rec.lock:
                rec.hits.append(Hit(path, msg_id, verified, body, status))
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                pass  # the worker gave up (timeout) or died

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


def _settings(tmp: Path, bootstrap: str, prefix: str, receiver: Receiver) -> Settings:
    return load_settings(
        broker=f"kafka://{bootstrap}",
        topic_prefix=prefix,
        federation_prefix=prefix,
        data_dir=tmp / "node",
        group_id=f"g-{prefix}",
        api_token=TOKEN,
        webhook_retry_schedule_s=(0.3, 0.3),
        webhook_timeout_s=1.0,
        allowed_url_prefixes=(f"{receiver.url}/",),
    )


@asynccontextmanager
async def _edge(settings: Settings, topology: Topology) -> AsyncIterator[str]:
    transport = KafkaTransport(settings.broker, topology)
    ctx = EdgeContext(settings, topology, transport, NodeMetrics(), [], token=TOKEN)
    server = EdgeServer(create_app(ctx, [subscriptions_router(ctx)]), "127.0.0.1", 0)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()
        await transport.close()


async def _wait(cond: Any, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _dead_letters(bootstrap: str, topic: str, n: int) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        await consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + 60
        while len(out) < n and time.monotonic() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=500)
            out += [orjson.loads(m.value) for m in batch.get(tp, [])]
    finally:
        await consumer.stop()
    return out


async def _prepare(bootstrap: str) -> tuple[str, Topology]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    topology = Topology(prefix=prefix, partitions=4, federation_prefix=prefix)
    await create_topics(bootstrap, topology.partition_counts())
    return prefix, topology


async def test_subscriptions_api_deliveries_retries_gone_timeouts_and_dead_letters(
    kafka_broker: KafkaBroker, tmp_path: Path, receiver: Receiver
) -> None:
    bootstrap = kafka_broker.bootstrap
    prefix, topology = await _prepare(bootstrap)
    settings = _settings(tmp_path, bootstrap, prefix, receiver)
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with _edge(settings, topology) as edge, httpx.AsyncClient(base_url=edge) as http:
        # hostile subscriptions: refused, nothing stored
        hostile = [
            ({"topic": "ops.ping", "url": f"{receiver.url}/ok"}, {}, 401, "token"),
            ({"topic": "ops.ping", "url": "http://10.1.2.3/x"}, auth, 422, "10.1.2.3"),
            ({"topic": "ops.ping", "url": "http://169.254.169.254/"}, auth, 422, "169.254.169.254"),
            ({"topic": "ops.ping", "url": "http://127.0.0.1:9/x"}, auth, 422, "127.0.0.1"),
            ({"topic": "ops.ping", "url": "file:///etc/passwd"}, auth, 422, "file:///etc/passwd"),
            ({"topic": "no.such", "url": f"{receiver.url}/ok"}, auth, 422, "no.such"),
            ({"topic": "ops.ping", "url": f"{receiver.url}/ok", "filters": ["ppm <<< 3"]}, auth,
             422, "ppm <<< 3"),
        ]  # fmt: skip
        for body, headers, status, text in hostile:
            reply = await http.post("/subscriptions", json=body, headers=headers)
            assert reply.status_code == status, (body, reply.text)
            assert text in reply.json()["detail"], (body, reply.json())
        listed = await http.get("/subscriptions", headers=auth)
        assert listed.json() == {"subscriptions": []}

        subs: dict[str, dict[str, Any]] = {}
        for path in ("/ok", "/flaky", "/gone", "/hang", "/fail", "/badsig"):
            reply = await http.post(
                "/subscriptions",
                json={
                    "topic": "ops.ping",
                    "url": f"{receiver.url}{path}",
                    "filters": [f"request_id=r{path[1:]}"],
                },
                headers=auth,
            )
            assert reply.status_code == 201, reply.text
            subs[path] = reply.json()
            receiver.secrets[path] = reply.json()["secret"]
        receiver.secrets["/badsig"] = "whsec_" + "QUFB" * 8  # the receiver knows another key
        extra = await http.post(
            "/subscriptions",
            json={"topic": "ops.ping", "url": f"{receiver.url}/ok", "filters": ["request_id=x"]},
            headers=auth,
        )
        deleted = await http.delete(f"/subscriptions/{extra.json()['id']}", headers=auth)
        assert deleted.status_code == 200
        listed = (await http.get("/subscriptions", headers=auth)).json()["subscriptions"]
        assert {s["id"] for s in listed} == {s["id"] for s in subs.values()}
        assert all("secret" not in s for s in listed)

    metrics = NodeMetrics()
    worker = DeliveryWorker(settings, topology, metrics)
    task = asyncio.create_task(worker.run())
    transport = KafkaTransport(settings.broker, topology)
    try:
        events = {}
        for name in ("ok", "flaky", "gone", "hang", "fail", "badsig", "nobody"):
            ping = Ping(request_id=f"r{name}")
            events[name] = ping
            await transport.publish("ops.ping", ping.key().encode(), encode(ping))
        dead = await _dead_letters(bootstrap, f"{prefix}webhooks.deadletter", 3)
        await _wait(lambda: len(receiver.of("/flaky")) >= 3, what="flaky retries")
        await _wait(lambda: len(receiver.of("/gone")) >= 1, what="gone")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    ok = receiver.of("/ok")
    assert len(ok) == 1 and ok[0].verified and ok[0].status == 200
    assert orjson.loads(ok[0].body)["event_id"] == str(events["ok"].event_id)
    flaky = receiver.of("/flaky")
    assert [h.status for h in flaky] == [500, 500, 200]
    assert len({h.webhook_id for h in flaky}) == 1  # one id across retries
    assert [h.status for h in receiver.of("/gone")] == [410]
    badsig = receiver.of("/badsig")
    assert [h.verified for h in badsig] == [False, False, False]
    by_path = {d["url"].removeprefix(receiver.url): d for d in dead}
    assert set(by_path) == {"/hang", "/fail", "/badsig"}
    assert by_path["/hang"]["last_status"] == "timeout" and by_path["/hang"]["attempts"] == 3
    assert by_path["/fail"]["last_status"] == "500"
    assert by_path["/badsig"]["last_status"] == "401"
    log = SubscriptionLog(bootstrap, prefix)
    state = await log.load()
    await log.close()
    gone = state[subs["/gone"]["id"]]
    assert gone.active is False and gone.disabled_reason and "410" in gone.disabled_reason
    assert state[subs["/ok"]["id"]].active is True
    exposition = __import__("prometheus_client").generate_latest(metrics.registry).decode()
    assert 'gravitas_webhook_deliveries_total{status="410"} 1.0' in exposition
    assert 'gravitas_webhook_deadletters_total{reason="exhausted"} 3.0' in exposition


def _worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITAS_")}
    env.update(
        GRAVITAS_BROKER=settings.broker,
        GRAVITAS_TOPIC_PREFIX=settings.topic_prefix,
        GRAVITAS_FEDERATION_PREFIX=settings.federation_prefix,
        GRAVITAS_DATA_DIR=str(settings.data_dir),
        GRAVITAS_GROUP_ID=settings.group_id or "",
        GRAVITAS_WEBHOOK_RETRY_SCHEDULE_S="[0.3, 0.3]",
        GRAVITAS_WEBHOOK_TIMEOUT_S="10",
        GRAVITAS_ALLOWED_URL_PREFIXES=orjson.dumps(list(settings.allowed_url_prefixes)).decode(),
    )
    return env


async def test_sigkilled_worker_redelivers_with_the_same_webhook_id(
    kafka_broker: KafkaBroker, tmp_path: Path, receiver: Receiver
) -> None:
    bootstrap = kafka_broker.bootstrap
    prefix, topology = await _prepare(bootstrap)
    settings = _settings(tmp_path, bootstrap, prefix, receiver)
    async with _edge(settings, topology) as edge, httpx.AsyncClient(base_url=edge) as http:
        reply = await http.post(
            "/subscriptions",
            json={"topic": "ops.ping", "url": f"{receiver.url}/slow"},
            headers={"authorization": f"Bearer {TOKEN}"},
        )
        receiver.secrets["/slow"] = reply.json()["secret"]
    log_file = (tmp_path / "worker.log").open("ab")
    cmd = [sys.executable, "-m", "gravitas.streams.webhooks.worker"]

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, env=_worker_env(settings), stdout=log_file,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    transport = KafkaTransport(settings.broker, topology)
    total = 4
    pings = [Ping(request_id=f"kill-{i}") for i in range(total)]
    for ping in pings:
        await transport.publish("ops.ping", ping.key().encode(), encode(ping))
    await transport.close()
    proc = start()
    try:
        await _wait(lambda: len(receiver.started) >= 1, 90, "the first delivery to start")
        in_flight = set(receiver.started)
        proc.kill()  # SIGKILL mid-delivery: the receiver holds its answer until the gate opens
        proc.wait(10)
        assert not receiver.of("/slow")  # nothing was answered before the kill
        receiver.gate.set()
        proc = start()
        await _wait(
            lambda: (
                len({h.webhook_id for h in receiver.of("/slow")}) >= total
                and in_flight <= {h.webhook_id for h in receiver.of("/slow") if h.status == 200}
            ),
            120,
            "every event delivered after the restart",
        )
    finally:
        proc.kill()
        proc.wait(10)
        log_file.close()
    hits = receiver.of("/slow")
    assert all(h.verified for h in hits)
    ids = [h.webhook_id for h in hits]
    assert len(set(ids)) == total  # one id per event: the receiver can dedupe
    events = {orjson.loads(h.body)["event_id"] for h in hits}
    assert events == {str(p.event_id) for p in pings}
    repeated = {i for i in ids if ids.count(i) > 1}
    assert in_flight <= repeated  # the interrupted delivery came again, same id
    assert len(ids) - total <= len(in_flight)


async def test_cli_subscribe_list_delete_through_the_edge(
    kafka_broker: KafkaBroker, tmp_path: Path, receiver: Receiver
) -> None:
    prefix, topology = await _prepare(kafka_broker.bootstrap)
    settings = _settings(tmp_path, kafka_broker.bootstrap, prefix, receiver)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITAS_")}
    env |= {"GRAVITAS_API_TOKEN": TOKEN, "GRAVITAS_DATA_DIR": str(tmp_path / "cli")}
    cli = [sys.executable, "-m", "gravitas.streams.cli"]

    def gravitas(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    async with _edge(settings, topology) as edge:
        made = await asyncio.to_thread(
            gravitas, "subscribe", "ops.ping", f"{receiver.url}/ok", "-f", "request_id=a,b",
            "-f", "bbox=0,0,10,10", "--edge", edge,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        sub = orjson.loads(made.stdout)
        assert sub["secret"].startswith("whsec_")
        assert [c["op"] for c in sub["filters"]] == ["in", "bbox"]
        listed = await asyncio.to_thread(gravitas, "subscriptions", "list", "--edge", edge)
        assert [s["id"] for s in orjson.loads(listed.stdout)["subscriptions"]] == [sub["id"]]
        refused = await asyncio.to_thread(
            gravitas, "subscribe", "ops.ping", "http://10.9.8.7/h", "--edge", edge
        )
        assert refused.returncode != 0
        assert "10.9.8.7" in refused.stderr and "Traceback" not in refused.stderr
        gone = await asyncio.to_thread(
            gravitas, "subscriptions", "delete", sub["id"], "--edge", edge
        )
        assert gone.returncode == 0, gone.stderr
        missing = await asyncio.to_thread(
            gravitas, "subscriptions", "delete", sub["id"], "--edge", edge
        )
        assert missing.returncode != 0 and sub["id"] in missing.stderr
        listed = await asyncio.to_thread(gravitas, "subscriptions", "list", "--edge", edge)
        assert orjson.loads(listed.stdout) == {"subscriptions": []}
