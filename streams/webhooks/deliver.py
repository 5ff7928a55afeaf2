"""One outbound delivery: a signed POST, retried on the configured schedule.

The ``webhook-id`` is derived from the subscription and the event (uuid5), so every
attempt and every redelivery after a worker crash carries the same id: receivers dedupe
on it, as the Standard Webhooks spec asks. ``410 Gone`` ends the delivery and disables
the subscription; other failures (non-2xx, timeout, connection error) are retried; the
last failure is dead-lettered with its status.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from gravitas.schemas.settings import Settings
from gravitas.storage.secrets import secret_file
from gravitas.streams.webhooks.signing import new_secret, sign_headers

NAMESPACE = uuid.UUID("2b9e0c53-3c0e-4f4e-8d0b-5f0f5d3a8e27")
OUTBOUND_SECRET_FILE = Path("webhooks") / "outbound.secret"


def master_secret(settings: Settings) -> bytes:
    """The key outbound subscription secrets derive from (setting, else a data-dir file)."""
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value().encode()
    return secret_file(Path(settings.data_dir) / OUTBOUND_SECRET_FILE, new_secret)


def subscription_secret(master: bytes, subscription_id: str) -> str:
    """The ``whsec_`` secret of one subscription (derived: nothing secret is on Kafka)."""
    digest = hmac.new(master, subscription_id.encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(digest).decode()


def webhook_id(subscription_id: str, event_key: str) -> str:
    """The idempotency id of delivering one event to one subscription."""
    name = subscription_id + "\0" + event_key
    return f"msg_{uuid.uuid5(NAMESPACE, name).hex}"


@dataclass
class Outcome:
    """How a delivery ended: ``delivered``, ``gone`` (410) or ``exhausted``."""

    result: str
    attempts: int
    last_status: str


async def deliver(
    http: httpx.AsyncClient,
    url: str,
    secret: str,
    msg_id: str,
    body: bytes,
    schedule: tuple[float, ...],
    timeout_s: float,
    still_wanted: Callable[[], bool],
    on_attempt: Callable[[str], None],
    content_headers: Mapping[str, str] | None = None,
) -> Outcome:
    """POST ``body`` until it is accepted (2xx), gone (410) or the schedule is spent;
    ``content_headers`` (a CloudEvent's ``ce-*`` / content-type) go with each attempt."""
    last = "none"
    attempts = 0
    for delay in (0.0, *schedule):
        if delay:
            await asyncio.sleep(delay)
        if not still_wanted():
            return Outcome("cancelled", attempts, last)
        attempts += 1
        headers = {
            **sign_headers(secret, msg_id, body, time.time()),
            "content-type": "application/json",
            **(content_headers or {}),
            "user-agent": "gravitas-webhooks",
        }
        try:
            reply = await http.post(url, content=body, headers=headers, timeout=timeout_s)
            last = str(reply.status_code)
        except httpx.TimeoutException:
            last = "timeout"
        except httpx.HTTPError:
            last = "error"
        on_attempt(last)
        if last.isdigit() and 200 <= int(last) < 300:
            return Outcome("delivered", attempts, last)
        if last == "410":
            return Outcome("gone", attempts, last)
    return Outcome("exhausted", attempts, last)
