"""The node's HTTP edge on 127.0.0.1: publish and tail topics, health and metrics.

The CLI reaches an embedded (``memory://``) node through it; the STAC API and the
webhook bridge mount their routers on the same app.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import ORJSONResponse, PlainTextResponse, StreamingResponse
from prometheus_client import generate_latest

from gravitas.schemas.codec import encode, from_dict, parse_json
from gravitas.schemas.errors import GravitasError, RequestError
from gravitas.schemas.settings import Settings
from gravitas.streams.client import Client
from gravitas.streams.metrics import NodeMetrics
from gravitas.streams.topology import Topology
from gravitas.streams.transports.base import RawRecord, Transport

MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass
class EdgeContext:
    """What the edge needs from its node."""

    settings: Settings
    topology: Topology
    transport: Transport
    metrics: NodeMetrics
    agents: list[str]
    extra_health: dict[str, Any] = field(default_factory=dict)


def check_token(settings: Settings, authorization: str | None) -> None:
    """Require ``Authorization: Bearer <api_token>`` when a token is configured."""
    if settings.api_token is None:
        return
    expected = f"Bearer {settings.api_token.get_secret_value()}"
    if authorization is None or not hmac.compare_digest(authorization, expected):
        raise HTTPException(401, "missing or wrong bearer token (set Authorization: Bearer ...)")


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


def events_router(ctx: EdgeContext) -> APIRouter:
    """Routes that publish and stream topic events."""
    router = APIRouter()

    @router.get("/topics")
    async def topics() -> dict[str, Any]:
        return {
            "topics": [
                {
                    "name": name,
                    "events": [e.__name__ for e in ctx.topology.events(name)],
                    "partitions": ctx.topology.partitions(name),
                    "description": ctx.topology.spec(name).description,
                }
                for name in ctx.topology.names
            ]
        }

    @router.post("/topics/{topic}/events")
    async def publish(
        topic: str, request: Request, authorization: str | None = Header(default=None)
    ) -> ORJSONResponse:
        check_token(ctx.settings, authorization)
        try:
            types = ctx.topology.events(topic)
        except GravitasError as exc:
            raise HTTPException(404, str(exc)) from exc
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(413, f"body of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
        events, problems = [], []
        for number, line in enumerate(body.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = parse_json(line)
                data.setdefault("node_id", ctx.settings.node_id)
                events.append(from_dict(data, types))
            except GravitasError as exc:
                problems.append({"line": number, "reason": str(exc)})
        if problems:
            return ORJSONResponse({"published": 0, "errors": problems}, status_code=422)
        for event in events:
            await ctx.transport.publish(topic, event.key().encode(), encode(event))
            ctx.metrics.published.labels(topic).inc()
        return ORJSONResponse(
            {"published": len(events), "event_ids": [str(e.event_id) for e in events]}
        )

    @router.post("/rpc/{topic}")
    async def rpc(
        topic: str,
        request: Request,
        timeout_s: float = Query(120.0, gt=0, le=3600),
        authorization: str | None = Header(default=None),
    ) -> ORJSONResponse:
        """Publish one request event here and answer with its reply (federation routing)."""
        check_token(ctx.settings, authorization)
        try:
            data = parse_json(await request.body())
            event = from_dict(data, ctx.topology.events(topic))
        except GravitasError as exc:
            raise HTTPException(422, str(exc)) from exc
        client = Client(
            "memory://",
            topology=ctx.topology,
            transport=ctx.transport,
            node_id=ctx.settings.node_id,
            data_dir=ctx.settings.data_dir,  # a large result is fetched from its reference
        )
        try:
            reply = await client.request(event, timeout=timeout_s)
        except RequestError as exc:
            raise HTTPException(504, str(exc)) from exc
        return ORJSONResponse(reply.model_dump(mode="json"))

    @router.get("/topics/{topic}/events")
    async def tail(
        topic: str,
        from_beginning: bool = Query(False),
        limit: int | None = Query(None, ge=1),
        idle_timeout_s: float | None = Query(None, gt=0),
    ) -> StreamingResponse:
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
    app = FastAPI(title=f"gravitas node {ctx.settings.node_id}", version="0.1.0")

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "node_id": ctx.settings.node_id,
            "broker": ctx.settings.broker,
            "agents": ctx.agents,
            **ctx.extra_health,
        }

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(ctx.metrics.registry).decode())

    app.include_router(events_router(ctx))
    for router in routers or []:
        app.include_router(router)
    return app
