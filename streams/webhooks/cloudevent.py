"""CloudEvents over HTTP (the ``cloudevents`` SDK), both ways, under Standard Webhooks.

Outbound, a subscription with ``format: cloudevents`` gets each event as a CloudEvent
1.0 in ``binary`` content mode (attributes in ``ce-*`` headers, the event's JSON as the
body, ``content-type: application/json``) or ``structured`` mode (the whole CloudEvent
as ``application/cloudevents+json``). The ``id`` attribute is the delivery's
``webhook-id``, so retries and redeliveries carry the same id; the Standard Webhooks
signature covers the id and the body (in binary mode the other ``ce-*`` headers are
not signed: receivers that need every attribute signed choose structured mode).

Inbound, ``POST /webhooks/{source}`` accepts a CloudEvent in either mode (the same
signature, timestamp and idempotency checks run first, on the raw body); its ``data``
is then mapped like a plain JSON payload. Refused, naming the bad value: a
``specversion`` other than 1.0, a missing or over-long ``id`` / ``source`` / ``type``,
a data content type that is not JSON, batch mode, and data that is not a JSON object.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import orjson
from cloudevents.core.bindings.http import HTTPMessage, from_http, to_binary, to_structured
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from gravitas.streams.webhooks.errors import WebhookRefusedError

__all__ = [
    "STRUCTURED",
    "ContentMode",
    "is_cloudevent",
    "outbound_message",
    "parse_inbound",
]

ContentMode = Literal["binary", "structured"]
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch"
TYPE_PREFIX = "org.gravitas."
REQUIRED = ("id", "source", "type")
MAX_ATTR_CHARS = {"id": 200, "source": 500, "type": 200, "subject": 500}
_JSON_TYPE = re.compile(r"^application/([a-zA-Z0-9.\-]+\+)?json(\s*;.*)?$", re.IGNORECASE)
_FORMAT = JSONFormat()


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_cloudevent(headers: Mapping[str, str]) -> bool:
    """True for a CloudEvents HTTP message (structured or batch content type, or any
    ``ce-`` header: binary mode)."""
    media = _media(headers.get("content-type", ""))
    if media in (STRUCTURED, BATCH + "+json"):
        return True
    return any(k.lower().startswith("ce-") for k in headers)


def outbound_message(
    event: dict[str, Any],
    *,
    msg_id: str,
    node_id: str,
    topic: str,
    mode: ContentMode,
) -> tuple[dict[str, str], bytes]:
    """The headers (without the signature ones) and body of ``event`` as a CloudEvent."""
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": msg_id,
        "source": f"/gravitas/nodes/{node_id}/topics/{topic}",
        "type": TYPE_PREFIX + str(event.get("type") or "event"),
        "datacontenttype": "application/json",
    }
    when = event.get("occurred_at")
    if isinstance(when, str):
        with contextlib.suppress(ValueError):
            attributes["time"] = datetime.fromisoformat(when)
    subject = event.get("request_id") or event.get("scene_id") or event.get("event_id")
    if subject:
        attributes["subject"] = str(subject)[: MAX_ATTR_CHARS["subject"]]
    ce = CloudEvent(attributes, event)
    message = to_binary(ce, _FORMAT) if mode == "binary" else to_structured(ce, _FORMAT)
    return dict(message.headers), message.body


def _refuse(message: str, status: int = 422) -> WebhookRefusedError:
    return WebhookRefusedError(status, "cloudevent", message)


def _check_attributes(attrs: Mapping[str, Any], where: str) -> None:
    version = attrs.get("specversion")
    if version != "1.0":
        raise _refuse(
            f"CloudEvent {where}specversion {str(version)[:20]!r} is not supported; send 1.0"
        )
    for name in REQUIRED:
        value = attrs.get(name)
        if not isinstance(value, str) or not value.strip():
            raise _refuse(f"CloudEvent required attribute {where}{name!r} is missing or empty")
        if len(value) > MAX_ATTR_CHARS[name] or not value.isprintable():
            raise _refuse(
                f"CloudEvent attribute {where}{name} {value[:40]!r} is not printable text of "
                f"<= {MAX_ATTR_CHARS[name]} chars"
            )


def _check_data_type(content_type: str, what: str) -> None:
    if not _JSON_TYPE.match(content_type.strip()):
        raise _refuse(
            f"CloudEvent {what} {content_type[:80]!r} is not JSON; send application/json data",
            415,
        )


def parse_inbound(headers: Mapping[str, str], body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``(data, attributes)`` of an inbound CloudEvent (already signature-checked).

    Raises :class:`WebhookRefusedError` (415 batch mode or non-JSON content, 422 a bad
    attribute or data) naming the bad value.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    content_type = lower.get("content-type", "")
    media = _media(content_type)
    if media.startswith(BATCH):
        raise _refuse(
            f"CloudEvents batch mode ({media!r}) is not accepted; send one event per call", 415
        )
    binary = any(k.startswith("ce-") for k in lower)
    if binary:
        if media == STRUCTURED:
            raise _refuse(
                "a structured CloudEvent (application/cloudevents+json) must not carry ce-* "
                "headers; send binary or structured mode, not both"
            )
        attrs = {k[3:]: v for k, v in lower.items() if k.startswith("ce-")}
        _check_attributes(attrs, "header ce-")
        _check_data_type(content_type, "content-type")
    else:
        if media != STRUCTURED:
            raise _refuse(
                f"content-type {content_type[:80]!r} is no CloudEvents mode; use "
                f"{STRUCTURED} or ce-* headers",
                415,
            )
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise WebhookRefusedError(422, "json", f"the body is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise _refuse("a structured CloudEvent must be a JSON object")
        _check_attributes(doc, "")
        if "data_base64" in doc:
            raise _refuse("CloudEvent data_base64 is not accepted; send JSON 'data'")
        _check_data_type(str(doc.get("datacontenttype") or "application/json"), "datacontenttype")
    try:
        event = from_http(HTTPMessage(headers=dict(lower), body=body), _FORMAT, CloudEvent)
    except (BaseCloudEventException, ValueError, TypeError) as exc:
        raise _refuse(f"not a valid CloudEvent: {str(exc)[:300]}") from None
    data = event.get_data()
    if not isinstance(data, dict):
        raise _refuse(
            f"CloudEvent {event.get_id()!r}: data must be a JSON object (a STAC item or an "
            f"event), not {type(data).__name__}"
        )
    return data, dict(event.get_attributes())
