"""The federation monitor's trust boundary, on an embedded node's real HTTP edge and real
hostile HTTP servers: ``/federation/metrics`` answers signed for the caller's nonce (a bad
nonce refused naming it), and :class:`FederationWatcher` shows a node's numbers only
from an answer signed by that node's configured key for this read: a replayed answer, a
redirect, an oversize answer, another node's signature and an unreachable peer show no
numbers. (The two-node run over Kafka, CLI and web page is in test_streams_webmap.py.)"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from gravitas.agents.signing import NodeIdentity, SignatureError, generate_seed
from gravitas.schemas.settings import load_settings
from gravitas.streams.monitor.federation import (
    MAX_BODY_BYTES,
    METRICS_PATH,
    FederationWatcher,
    NodeRow,
    Target,
    sign_metrics,
    verify_metrics,
)
from gravitas.streams.node import EmbeddedNode

SEED_A = generate_seed()


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[EmbeddedNode]:
    settings = load_settings(
        data_dir=tmp_path / "a", node_id="a", http_port=0, broker="memory://", signing_key=SEED_A
    )
    async with EmbeddedNode(settings) as n:
        yield n


def _key_a() -> str:
    return NodeIdentity.load(load_settings(node_id="a", signing_key=SEED_A)).public_key


@contextmanager
def _server(answer: Any) -> Iterator[str]:
    """A real HTTP server whose GET answer is ``answer(path) -> (status, headers, body)``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            status, headers, body = answer(self.path)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def _row(target: Target) -> NodeRow:
    (row,) = await FederationWatcher([target], "monitor").read()
    return row


async def test_signed_metrics_endpoint_and_its_bad_nonces(node: EmbeddedNode) -> None:
    edge = node.edge_url or ""
    async with httpx.AsyncClient(base_url=edge) as http:
        for nonce, text in (("short", "'short'"), ("x" * 20 + "/..", "'xxxxxxxxxxxxxxxxxxxx/..'")):
            reply = await http.get(METRICS_PATH, params={"nonce": nonce})
            assert reply.status_code == 422 and text in reply.text, reply.text
        assert (await http.get(METRICS_PATH)).status_code == 422
        nonce = "n" * 24
        reply = await http.get(METRICS_PATH, params={"nonce": nonce})
    assert reply.status_code == 200
    assert "gravitas_http_request_seconds" in reply.text
    headers = {k.lower(): v for k, v in reply.headers.items()}
    verify_metrics(headers, nonce, reply.content, "a", _key_a())
    with pytest.raises(SignatureError, match="does not verify"):
        verify_metrics(headers, "m" * 24, reply.content, "a", _key_a())
    row = await _row(Target("a", edge, _key_a()))
    assert row.status == "ok" and row.requests is not None and row.requests >= 1, row


async def test_only_answers_signed_by_the_configured_key_for_this_read_count(
    node: EmbeddedNode,
) -> None:
    edge = node.edge_url or ""
    async with httpx.AsyncClient() as http:
        captured = await http.get(f"{edge}{METRICS_PATH}", params={"nonce": "c" * 24})
    old_headers = {k: v for k, v in captured.headers.items() if k.lower().startswith("x-gravitas")}
    fake = b'gravitas_events_processed_total{agent="evil",topic="x"} 999999.0\n'

    def replay(path: str) -> tuple[int, dict[str, str], bytes]:
        return 200, old_headers, captured.content  # A's genuine answer to another nonce

    def redirect(path: str) -> tuple[int, dict[str, str], bytes]:
        return 302, {"location": f"{edge}{path}"}, b""

    def huge(path: str) -> tuple[int, dict[str, str], bytes]:
        return 200, {}, b"#" * (MAX_BODY_BYTES + 10)

    def other_node(path: str) -> tuple[int, dict[str, str], bytes]:
        b = NodeIdentity.load(load_settings(node_id="b", signing_key=generate_seed()))
        return 200, sign_metrics(b, path.split("nonce=")[-1], fake), fake

    with (
        _server(replay) as replayed,
        _server(redirect) as redirecting,
        _server(huge) as oversize,
        _server(other_node) as impostor,
    ):
        rows = {
            "replay": await _row(Target("a", replayed, _key_a())),
            "redirect": await _row(Target("a", redirecting, _key_a())),
            "oversize": await _row(Target("a", oversize, _key_a())),
            "other node's signature": await _row(Target("a", impostor, _key_a())),
            "unreachable": await _row(Target("a", "http://127.0.0.1:9", _key_a())),
        }
    assert (
        rows["replay"].status.startswith("refused") and "does not verify" in rows["replay"].status
    )
    assert "HTTP 302" in rows["redirect"].status
    assert f"over {MAX_BODY_BYTES} bytes" in rows["oversize"].status
    assert "signed as 'b'" in rows["other node's signature"].status
    assert rows["unreachable"].status.startswith("unreachable")
    for name, row in rows.items():
        assert row.status != "ok", name
        assert row.events is None and row.requests is None and row.event_rate is None, name
    listed = await FederationWatcher([Target("a", edge, _key_a())], "a").read(["a", "zed", ""])
    assert [(r.node_id, r.status) for r in listed] == [
        ("a", "ok"),
        ("zed", "not allow-listed (not in GRAVITAS_PEERS)"),
    ]


def test_the_terminal_view_shows_the_federation_table() -> None:
    from rich.console import Console

    from gravitas.streams.monitor.federation import rows_json
    from gravitas.streams.monitor.snapshot import PipelineSnapshot
    from gravitas.streams.monitor.view import render

    rows = [
        NodeRow("a", "ok", self=True, events=12, event_rate=1.5, lag=3, deadletters=1, requests=7),
        NodeRow("c", "refused: the answer carries no signature (X-Gravitas-* headers)"),
    ]
    snap = PipelineSnapshot("a", "kafka://127.0.0.1:9092", 0.0, federation=rows_json(rows))
    console = Console(width=200, record=True)
    console.print(render(snap))
    text = console.export_text()
    assert "federation" in text and "a (this node)" in text and "1.50" in text
    assert "refused: the answer carries no signature" in text


@contextmanager
def _silent_peer() -> Iterator[str]:
    """A real listening socket that accepts connections (the kernel's backlog) and never
    answers a byte."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


async def test_a_silent_peer_is_named_and_does_not_delay_the_others(tmp_path: Path) -> None:
    import time

    import orjson

    from gravitas.streams.monitor.federation import PEER_DEADLINE_S, TIMEOUT_S

    other = NodeIdentity.load(load_settings(node_id="s", signing_key=generate_seed())).public_key
    with _silent_peer() as silent:
        peers = {"slow": {"public_key": other, "api_url": silent}}
        settings = load_settings(
            data_dir=tmp_path / "a", node_id="a", http_port=0, broker="memory://",
            signing_key=SEED_A, peers=peers,
        )  # fmt: skip
        async with EmbeddedNode(settings) as node:
            edge = node.edge_url or ""
            watcher = FederationWatcher(
                [Target("a", edge, _key_a()), Target("slow", silent, other)], "monitor"
            )
            t0 = time.monotonic()
            rows = {r.node_id: r for r in await watcher.read()}
            took = time.monotonic() - t0
            assert took < PEER_DEADLINE_S + 1.0 < TIMEOUT_S, took
            assert rows["a"].status == "ok" and rows["a"].requests is not None, rows["a"]
            slow = rows["slow"]
            assert slow.status.startswith("unreachable: no answer within"), slow
            assert silent in slow.status and slow.events is None and slow.requests is None
            # the node's own web page: its live pipeline (with the federation table)
            # refreshes on time, the silent peer named as such
            stamps: list[float] = []
            fed: list[dict[str, Any]] = []
            t0 = time.monotonic()
            async with (
                httpx.AsyncClient(base_url=edge, timeout=10) as http,
                http.stream("GET", "/web/live", params={"interval": 0.5}) as reply,
            ):
                event = ""
                async for line in reply.aiter_lines():
                    if line.startswith("event:"):
                        event = line.split(":", 1)[1].strip()
                    elif line.startswith("data:") and event == "pipeline":
                        stamps.append(time.monotonic() - t0)
                        fed = orjson.loads(line.split(":", 1)[1])["federation"]
                        if len(stamps) == 2:
                            break
    status = {r["node_id"]: r["status"] for r in fed}
    assert status["a"] == "ok" and status["slow"].startswith("unreachable: no answer"), status
    gaps = [b - a for a, b in zip([0.0, *stamps], stamps, strict=False)]
    assert max(gaps) < PEER_DEADLINE_S + 1.0, gaps
