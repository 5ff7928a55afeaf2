"""The node's HTTP edge on 127.0.0.1: publish and tail topics, health and metrics.

Reads of the STAC API, ``/healthz``, ``/metrics`` and ``/topics`` are public; publishing,
tailing and STAC transactions need the node's bearer token; ``/rpc`` takes the token or
a request signed by a configured peer; only ``external`` topics are publishable from
outside; bodies are bounded while they stream and foreign origins are refused
(:mod:`gravitas.streams.edge.guard`). The trust model is in docs/security.md.

The CLI reaches an embedded (``memory://``) node through it; the STAC API and the
webhook bridge mount their routers on the same app.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse

from gravitas.schemas.base import Event
from gravitas.schemas.codec import encode, from_dict, parse_json
from gravitas.schemas.errors import ConfigError, GravitasError, RequestError
from gravitas.schemas.events import Rejected
from gravitas.schemas.settings import Settings
from gravitas.streams.client import Client, RequestRejectedError
from gravitas.streams.edge.auth import require_token, require_token_or_peer
from gravitas.streams.edge.guard import EdgeGuard
from gravitas.streams.edge.replies import refuse_step_replies
from gravitas.streams.metrics import CONTENT_TYPE_LATEST, NodeMetrics, RequestTimer, render
from gravitas.streams.topology import Topology
from gravitas.streams.transports.base import RawRecord, Transport


@dataclass
class EdgeContext:
    """What the edge needs from its node."""

    settings: Settings
    topology: Topology
    transport: Transport
    metrics: NodeMetrics
    agents: list[str]
    token: str
    """The bearer token publishing, tailing and transactions need (see ``auth``)."""
    peer_keys: dict[str, str] = field(default_factory=dict)
    """Node id -> public key of the peers whose forwarded requests ``/rpc`` accepts."""
    extra_health: dict[str, Any] = field(default_factory=dict)


def _json(body: Any, status_code: int = 200) -> Response:
    """A JSON response encoded with orjson (FastAPI deprecated ORJSONResponse)."""
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def record_line(rec: RawRecord) -> bytes:
    """One NDJSON line for a record: its value as JSON if it is JSON, else as text."""
    out: dict[str, Any] = {
        "topic": rec.topic,
        "partition": rec.partition,
        "offset": rec.offset,
        "key": (rec.key or b"").decode("utf-8", errors="replace"),
        "timestamp_ms": rec.timestamp_ms,
    }
    try:
        out["value"] = orjson.loads(rec.value)
    except orjson.JSONDecodeError:
        out["raw"] = rec.value.decode("utf-8", errors="replace")
    return orjson.dumps(out) + b"\n"


def publishable(topology: Topology, topic: str) -> Sequence[type[Event]]:
    """The event classes of a topic clients may publish to (404 unknown, 403 internal)."""
    try:
        spec = topology.spec(topic)
    except GravitasError as exc:
        raise HTTPException(404, str(exc)) from exc
    if not spec.external:
        open_topics = [t for t in topology.names if topology.spec(t).external]
        raise HTTPException(
            403,
            f"topic {topic!r} is internal (only the node's agents write it); clients may "
            f"publish to: {', '.join(open_topics)}",
        )
    return spec.events


def parse_lines(
    body: bytes, types: Sequence[type[Event]], node_id: str
) -> tuple[list[Event], list[tuple[int, bytes, GravitasError]]]:
    """Events of an NDJSON body, and (line number, line, error) of each bad line."""
    events: list[Event] = []
    problems: list[tuple[int, bytes, GravitasError]] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = parse_json(line)
            data.setdefault("node_id", node_id)
            events.append(from_dict(data, types))
        except GravitasError as exc:
            problems.append((number, line, exc))
    return events, problems


def events_router(ctx: EdgeContext) -> APIRouter:
    """Routes that publish and stream topic events (all of them need the token)."""
    router = APIRouter()

    async def publish_events(topic: str, events: list[Event]) -> list[str]:
        for event in events:
            await ctx.transport.publish(topic, event.key().encode(), encode(event))
            ctx.metrics.published.labels(topic).inc()
        return [str(e.event_id) for e in events]

    @router.get("/topics")
    async def topics() -> dict[str, Any]:
        return {
            "topics": [
                {
                    "name": name,
                    "events": [e.__name__ for e in ctx.topology.events(name)],
                    "partitions": ctx.topology.partitions(name),
                    "description": ctx.topology.spec(name).description,
                    "publishable": ctx.topology.spec(name).external,
                }
                for name in ctx.topology.names
            ]
        }

    @router.post("/topics/{topic}/events")
    async def publish(
        topic: str, request: Request, authorization: str | None = Header(default=None)
    ) -> Response:
        """Validate every line, then publish all of them (or none: 422 with each bad line)."""
        require_token(ctx.token, authorization)
        types = publishable(ctx.topology, topic)
        events, problems = parse_lines(await request.body(), types, ctx.settings.node_id)
        if problems:
            errors = [{"line": n, "reason": str(exc)} for n, _, exc in problems]
            return _json({"published": 0, "errors": errors}, status_code=422)
        refuse_step_replies(events)
        ids = await publish_events(topic, events)
        return _json({"published": len(ids), "event_ids": ids})

    @router.post("/topics/{topic}/records")
    async def publish_records(
        topic: str, request: Request, authorization: str | None = Header(default=None)
    ) -> Response:
        """Raw records, one per line: valid ones are published, each bad one is
        dead-lettered (``Rejected`` on ``deadletter`` with the line number and reason)."""
        require_token(ctx.token, authorization)
        types = publishable(ctx.topology, topic)
        events, problems = parse_lines(await request.body(), types, ctx.settings.node_id)
        refuse_step_replies(events)  # the whole body, before anything is published
        ids = await publish_events(topic, events)
        rejected = []
        for number, line, exc in problems:
            record = Rejected.for_payload(
                line,
                node_id=ctx.settings.node_id,
                source_topic=topic,
                error_class=type(exc).__name__,
                reason=f"line {number}: {exc}",
                agent="edge",
            )
            await ctx.transport.publish("deadletter", record.key().encode(), encode(record))
            ctx.metrics.rejected.labels("edge", topic, type(exc).__name__).inc()
            rejected.append(
                {"line": number, "reason": str(exc), "rejected_id": str(record.event_id)}
            )
        return _json({"published": len(ids), "event_ids": ids, "rejected": rejected})

    @router.post("/rpc/{topic}")
    async def rpc(
        topic: str,
        request: Request,
        timeout_s: float = Query(120.0, gt=0, le=3600),
    ) -> Response:
        """Publish one request event here and answer with its reply (federation routing:
        the node's token, or a request signed by a configured peer)."""
        body = await request.body()
        peer = require_token_or_peer(
            ctx.token, request.headers, request.url.path, body, ctx.peer_keys
        )
        types = publishable(ctx.topology, topic)
        try:
            event = from_dict(parse_json(body), types)
        except GravitasError as exc:
            raise HTTPException(422, str(exc)) from exc
        refuse_step_replies([event], peer)
        if not getattr(event, "reply_topic", None) or not getattr(event, "request_id", None):
            raise HTTPException(
                422, f"{type(event).__name__} is not a request with a reply; publish it instead"
            )
        client = Client(
            "memory://",
            topology=ctx.topology,
            transport=ctx.transport,
            node_id=ctx.settings.node_id,
            data_dir=ctx.settings.data_dir,  # a large result is fetched from its reference
        )
        try:
            reply = await client.request(event, timeout=timeout_s)
        except RequestRejectedError as exc:
            raise HTTPException(422, str(exc)) from exc
        except RequestError as exc:
            raise HTTPException(504, str(exc)) from exc
        return _json(reply.model_dump(mode="json"))

    @router.get("/topics/{topic}/events")
    async def tail(
        topic: str,
        from_beginning: bool = Query(False),
        limit: int | None = Query(None, ge=1),
        idle_timeout_s: float | None = Query(None, gt=0),
        authorization: str | None = Header(default=None),
    ) -> StreamingResponse:
        require_token(ctx.token, authorization)
        try:
            ctx.topology.spec(topic)
        except GravitasError as exc:
            raise HTTPException(404, str(exc)) from exc

        async def lines() -> AsyncIterator[bytes]:
            async with ctx.transport.subscription(topic, from_beginning) as sub:
                yield b'{"ready": true}\n'
                count = 0
                iterator = sub.__aiter__()
                while limit is None or count < limit:
                    try:
                        rec = await asyncio.wait_for(iterator.__anext__(), idle_timeout_s)
                    except TimeoutError:
                        return
                    yield record_line(rec)
                    count += 1

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return router


def create_app(ctx: EdgeContext, routers: list[APIRouter] | None = None) -> FastAPI:
    """The FastAPI app of a node's edge."""
    if not ctx.token:
        raise ConfigError("the edge needs a non-empty API token")
    app = FastAPI(title=f"gravitas node {ctx.settings.node_id}", version="0.1.0")
    app.add_middleware(
        EdgeGuard,
        max_body_bytes=ctx.settings.max_body_bytes,
        trusted_origins=[ctx.settings.public_url or ""],
        allowed_hosts=[
            ctx.settings.http_host,
            urlsplit(ctx.settings.public_url or "").hostname or "",
        ],
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "node_id": ctx.settings.node_id,
            "broker": ctx.settings.broker,
            "agents": ctx.agents,
            **ctx.extra_health,
        }

    app.add_middleware(RequestTimer, metrics=ctx.metrics)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(await render(ctx.metrics), media_type=CONTENT_TYPE_LATEST)

    app.include_router(events_router(ctx))
    for router in routers or []:
        app.include_router(router)
    return app
