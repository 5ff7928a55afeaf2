"""``POST /webhooks/{source}[?topic=...]``: a signed call from a configured provider
becomes one event on an allowed topic.

Checks, in order, each refusal answered with ``{"detail": ...}`` naming the bad value and
nothing published: the source is configured (404), the body fits
``GRAVITAS_WEBHOOK_MAX_BODY_BYTES`` (413), the Standard Webhooks headers are present and
well-formed (400), the timestamp is within +-5 minutes (401), the signature matches
the source's secret (401), the topic is on the source's allow-list and external (403),
the body is JSON (422) and maps to an event (422; a STAC item's hrefs pass the href
policy). A CloudEvent (binary or structured mode, :mod:`.cloudevent`) passes the same
checks; its ``data`` is the payload. A call whose webhook-id was published already answers 200 with
``"duplicate": true`` and publishes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gravitas.schemas.codec import encode
from gravitas.schemas.errors import GravitasError
from gravitas.storage.hrefs import HrefPolicy
from gravitas.streams.edge.app import EdgeContext
from gravitas.streams.edge.replies import STEP_REPLIES
from gravitas.streams.webhooks.cloudevent import TYPE_PREFIX, is_cloudevent, parse_inbound
from gravitas.streams.webhooks.errors import WebhookRefusedError
from gravitas.streams.webhooks.mapping import STAC_TOPIC, event_id_for, is_stac_item, map_payload
from gravitas.streams.webhooks.seen import SeenWebhooks
from gravitas.streams.webhooks.signing import source_secret, verify

SEEN_FILE = "webhooks.sqlite"


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def webhooks_router(ctx: EdgeContext) -> APIRouter:
    """The inbound bridge (secrets of every source are read, or generated, now)."""
    settings = ctx.settings
    secrets = {name: source_secret(settings, name) for name in settings.webhook_sources}
    seen = SeenWebhooks(Path(settings.data_dir) / SEEN_FILE)
    router = APIRouter()
    counter = ctx.metrics.webhooks_received

    async def handle(source: str, topic: str | None, request: Request) -> dict[str, Any]:
        conf = settings.webhook_sources.get(source)
        if conf is None:
            raise WebhookRefusedError(
                404,
                "source",
                f"webhook source {source[:64]!r} is not configured on this node "
                f"(GRAVITAS_WEBHOOK_SOURCES has: {', '.join(sorted(secrets)) or 'none'})",
            )
        limit = settings.webhook_max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(int(declared), limit)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise _too_large(len(body), limit)
        webhook_id = verify(secrets[source], request.headers, body)
        payload = _payload(request.headers, body)
        target = topic or (STAC_TOPIC if is_stac_item(payload) else None)
        if target is None:
            raise WebhookRefusedError(
                400, "topic", f"name the topic: ?topic=<one of {', '.join(conf.topics)}>"
            )
        if target not in conf.topics:
            raise WebhookRefusedError(
                403,
                "topic",
                f"topic {target[:100]!r} is not allowed for source {source!r} (allowed: "
                f"{', '.join(conf.topics)})",
            )
        try:
            spec = ctx.topology.spec(target)
        except GravitasError as exc:
            raise WebhookRefusedError(403, "topic", str(exc)) from None
        if not spec.external:
            raise WebhookRefusedError(
                403, "topic", f"topic {target!r} is internal; webhooks publish to external topics"
            )
        done = await asyncio.to_thread(seen.get, source, webhook_id)
        if done is not None:
            return {"duplicate": True, "event_id": done[0], "topic": done[1], "published": 0}
        policy = await asyncio.to_thread(HrefPolicy.from_settings, settings)
        event_id = event_id_for(settings.node_id, source, webhook_id)
        event = await asyncio.to_thread(
            map_payload, payload, target, spec.events, conf, policy, settings.node_id, event_id
        )
        if getattr(event, "reply_topic", None) == STEP_REPLIES:  # see edge/replies.py
            raise WebhookRefusedError(
                403,
                "reply_topic",
                f"reply_topic {STEP_REPLIES!r} is the workflow agent's; leave it out",
            )
        await ctx.transport.publish(target, event.key().encode(), encode(event))
        ctx.metrics.published.labels(target).inc()
        await asyncio.to_thread(seen.record, source, webhook_id, str(event_id), target)
        return {"duplicate": False, "event_id": str(event_id), "topic": target, "published": 1}

    @router.post("/webhooks/{source}")
    async def receive(
        source: str, request: Request, topic: str | None = Query(None, max_length=100)
    ) -> Response:
        try:
            answer = await handle(source, topic, request)
        except WebhookRefusedError as exc:
            label = source if source in secrets else "unknown"
            counter.labels(label, exc.reason).inc()
            return _answer({"detail": str(exc), "reason": exc.reason}, exc.status)
        counter.labels(source, "duplicate" if answer["duplicate"] else "published").inc()
        return _answer(answer)

    return router


def _payload(headers: Mapping[str, str], body: bytes) -> Any:
    """The JSON payload of a call: its body, or the data of a CloudEvent (whose ``type``
    names the event type when the data has none)."""
    if is_cloudevent(headers):
        data, attributes = parse_inbound(headers, body)
        ce_type = str(attributes.get("type", ""))
        if "type" not in data and ce_type.startswith(TYPE_PREFIX):
            data["type"] = ce_type.removeprefix(TYPE_PREFIX)
        return data
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WebhookRefusedError(422, "json", f"the body is not JSON: {exc}") from None


def _too_large(size: int, limit: int) -> WebhookRefusedError:
    return WebhookRefusedError(
        413,
        "size",
        f"webhook body of {size} bytes exceeds the limit of {limit} bytes "
        "(GRAVITAS_WEBHOOK_MAX_BODY_BYTES)",
    )
