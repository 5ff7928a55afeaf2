"""The federation as a monitor sees it: one row per node (event and publish rates, lag,
dead letters, HTTP requests), read from each node's signed metrics.

Every node serves ``GET /federation/metrics?nonce=N``: its ``/metrics`` exposition with
``X-Gravitas-Node`` / ``-Time`` / ``-Signature`` headers: the node's Ed25519 signature
over ``gravitas-metrics``, its id, the time, the monitor's fresh nonce (so an old answer
cannot be replayed) and the SHA-256 of the body. The domain tag keeps these signatures
apart from forwarded requests' (``gravitas-rpc``): an answer is never a valid request.

:class:`FederationWatcher` reads only the nodes of the allow-list (``GRAVITAS_PEERS``,
their configured ``api_url`` and public key, plus this node): an answer that is
unsigned, signed by another key or for another nonce is refused and none of its numbers
are shown. Nodes heard of on the federation's topics but not on the allow-list are
listed as ``not allow-listed`` and never contacted. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, Query
from fastapi.responses import Response
from prometheus_client.parser import text_string_to_metric_families

from gravitas.agents.answer_signing import sign_answer, verify_answer
from gravitas.agents.signing import KEY_FILE, NodeIdentity, SignatureError
from gravitas.schemas.errors import InputError
from gravitas.schemas.settings import Settings
from gravitas.streams.metrics import CONTENT_TYPE_LATEST, NodeMetrics, render

__all__ = [
    "METRICS_PATH",
    "PEER_DEADLINE_S",
    "FederationWatcher",
    "NodeRow",
    "Target",
    "cli_federation",
    "federation_metrics_router",
    "node_federation",
    "rows_json",
    "sign_metrics",
    "targets_for",
    "verify_metrics",
]

METRICS_PATH = "/federation/metrics"
MAX_BODY_BYTES = 4 * 1024 * 1024
TIMEOUT_S = 5.0
PEER_DEADLINE_S = 1.5
"""Each node's whole read (connect, answer, body) must finish within this; a slower or
silent node is shown as ``unreachable: no answer within ...`` while the others refresh
on time (they are read concurrently)."""
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")

# sample name -> row field (sums over every label set)
_TOTALS = {
    "gravitas_events_processed_total": "events",
    "gravitas_events_published_total": "published",
    "gravitas_events_rejected_total": "deadletters",
    "gravitas_webhook_deadletters_total": "webhook_deadletters",
    "gravitas_http_request_seconds_count": "requests",
    "kafka_consumergroup_lag": "lag",
}
_RATES = {"events": "event_rate", "published": "publish_rate", "requests": "request_rate"}


DOMAIN = "gravitas-metrics"
"""The domain tag of signed metrics reads (:mod:`gravitas.agents.answer_signing`)."""


def sign_metrics(
    identity: NodeIdentity, nonce: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """The headers that sign one metrics answer for ``nonce``."""
    return sign_answer(identity, DOMAIN, nonce, 200, body, now)


def verify_metrics(
    headers: dict[str, str], nonce: str, body: bytes, node_id: str, public_key: str
) -> None:
    """Check that ``node_id``'s key signed this answer for ``nonce`` (lower-case header
    names), or raise :class:`SignatureError` naming what is wrong."""
    verify_answer(headers, DOMAIN, nonce, 200, body, node_id, public_key)


def federation_metrics_router(identity: NodeIdentity, metrics: NodeMetrics) -> APIRouter:
    """``GET /federation/metrics?nonce=N``: this node's metrics, signed."""
    router = APIRouter()

    @router.get(METRICS_PATH, include_in_schema=False)
    async def signed_metrics(nonce: str = Query(..., max_length=64)) -> Response:
        if not _NONCE.fullmatch(nonce):
            return Response(
                f'{{"detail": "nonce {nonce[:64]!r} must be 16-64 of [A-Za-z0-9_-]"}}',
                status_code=422,
                media_type="application/json",
            )
        body = await render(metrics)
        headers = sign_metrics(identity, nonce, body)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers=headers)

    return router


@dataclass(frozen=True)
class Target:
    """One allow-listed node: where its edge is and the key its answers must carry."""

    node_id: str
    url: str
    public_key: str


@dataclass
class NodeRow:
    """One node of the federation as the monitor last read it."""

    node_id: str
    status: str = "unknown"
    """``ok``, ``refused: ...`` (unsigned/forged), ``unreachable: ...`` or
    ``not allow-listed`` (heard of on a federation topic, never contacted)."""
    self: bool = False
    url: str = ""
    events: float | None = None
    published: float | None = None
    deadletters: float | None = None
    webhook_deadletters: float | None = None
    requests: float | None = None
    lag: float | None = None
    event_rate: float | None = None
    publish_rate: float | None = None
    request_rate: float | None = None
    read_at: float | None = None


def targets_for(settings: Settings, self_url: str | None, self_key: str | None) -> list[Target]:
    """The allow-list: every configured peer, and this node when its edge and key are known."""
    out = [Target(n, p.api_url, p.public_key) for n, p in sorted(settings.peers.items())]
    if self_url and self_key and settings.node_id not in settings.peers:
        out.insert(0, Target(settings.node_id, self_url.rstrip("/"), self_key))
    return out


def totals(text: str) -> dict[str, float]:
    """The summed counters of one exposition (see ``_TOTALS``)."""
    out = dict.fromkeys(_TOTALS.values(), 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = _TOTALS.get(sample.name)
            if name is not None:
                out[name] += float(sample.value)
    return out


@dataclass
class FederationWatcher:
    """Reads the signed metrics of every allow-listed node, on demand."""

    targets: list[Target]
    self_id: str
    local: Callable[[], Awaitable[bytes]] | None = None
    """This node's own exposition read in process (the node's web page), if any."""
    rows: dict[str, NodeRow] = field(default_factory=dict)
    _last: dict[str, tuple[float, dict[str, float]]] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    min_interval_s: float = 0.0
    deadline_s: float = PEER_DEADLINE_S
    """Per-node deadline of one read (:data:`PEER_DEADLINE_S`)."""
    _read_at: float = 0.0

    async def _fetch(self, http: httpx.AsyncClient, target: Target) -> str:
        nonce = secrets.token_urlsafe(24)
        path = f"{METRICS_PATH}?nonce={nonce}"
        async with http.stream("GET", target.url + path, timeout=TIMEOUT_S) as reply:
            if reply.status_code != 200:
                raise InputError(f"HTTP {reply.status_code} from {target.url}{METRICS_PATH}")
            body = b""
            async for chunk in reply.aiter_bytes():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise InputError(f"answer over {MAX_BODY_BYTES} bytes")
        headers = {k.lower(): v for k, v in reply.headers.items()}
        verify_metrics(headers, nonce, body, target.node_id, target.public_key)
        return body.decode("utf-8", errors="replace")

    async def _read(self, http: httpx.AsyncClient, target: Target) -> NodeRow:
        row = NodeRow(target.node_id, self=target.node_id == self.self_id, url=target.url)
        try:
            if row.self and self.local is not None:
                text = (await self.local()).decode("utf-8", errors="replace")
            else:
                text = await self._fetch(http, target)
            values = totals(text)
        except SignatureError as exc:
            row.status = f"refused: {exc}"
            return row
        except (httpx.HTTPError, InputError, ValueError) as exc:
            row.status = f"unreachable: {str(exc)[:200] or type(exc).__name__}"
            return row
        now = time.monotonic()
        row.status = "ok"
        row.read_at = time.time()
        for name, value in values.items():
            setattr(row, name, value)
        previous = self._last.get(target.node_id)
        if previous is not None and now > previous[0]:
            dt = now - previous[0]
            for name, rate in _RATES.items():
                setattr(row, rate, round(max(0.0, values[name] - previous[1][name]) / dt, 3))
        self._last[target.node_id] = (now, values)
        return row

    async def _read_by_deadline(self, http: httpx.AsyncClient, target: Target) -> NodeRow:
        try:
            return await asyncio.wait_for(self._read(http, target), self.deadline_s)
        except TimeoutError:
            row = NodeRow(target.node_id, self=target.node_id == self.self_id, url=target.url)
            row.status = (
                f"unreachable: no answer within {self.deadline_s:g} s from {target.url}"
                " (slow or down)"
            )
            return row

    async def read(self, heard_of: Iterable[str] = ()) -> list[NodeRow]:
        """Read every allow-listed node now (at most every ``min_interval_s``) and add the
        nodes ``heard_of`` on federation topics that are not on the allow-list."""
        async with self._lock:
            if not self.rows or time.monotonic() - self._read_at >= self.min_interval_s:
                async with httpx.AsyncClient(follow_redirects=False) as http:
                    rows = await asyncio.gather(
                        *(self._read_by_deadline(http, t) for t in self.targets)
                    )
                self.rows = {r.node_id: r for r in rows}
                self._read_at = time.monotonic()
            allowed = {t.node_id for t in self.targets}
            out = list(self.rows.values())
            for node_id in sorted(set(heard_of) - allowed - {""}):
                out.append(NodeRow(node_id[:64], status="not allow-listed (not in GRAVITAS_PEERS)"))
            return out


def rows_json(rows: Iterable[NodeRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]


def node_federation(
    settings: Settings, identity: NodeIdentity, metrics: NodeMetrics
) -> FederationWatcher | None:
    """The federation view of a running node (its own metrics read in process), or None
    when it has no peers."""
    if not settings.peers:
        return None

    async def local() -> bytes:
        return await render(metrics)

    targets = [Target(settings.node_id, "(this node)", identity.public_key)]
    targets += targets_for(settings, None, None)
    return FederationWatcher(targets, settings.node_id, local=local, min_interval_s=2.0)


def cli_federation(settings: Settings, self_url: str | None) -> FederationWatcher | None:
    """The federation view of ``gravitas monitor``: every peer, and this node when its
    edge URL and key are known (``<data_dir>/node_key`` or ``GRAVITAS_SIGNING_KEY``)."""
    if not settings.peers:
        return None
    key: str | None = None
    if settings.signing_key is not None or (Path(settings.data_dir) / KEY_FILE).exists():
        key = NodeIdentity.load(settings).public_key
    return FederationWatcher(targets_for(settings, self_url, key), settings.node_id)
