"""Standard Webhooks signatures: the secrets of a node, and the three headers.

A secret is ``whsec_<base64 of 24+ random bytes>`` as the spec recommends. Inbound
sources each have a secret file (``<data_dir>/webhooks/<source>.secret`` by default,
created mode 0600 on first start like the edge token); the provider is given its content.
Verification uses the ``standardwebhooks`` package after checking the headers here, so
every refusal names the bad header.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gravitas.schemas.errors import ConfigError
from gravitas.schemas.settings import Settings
from gravitas.storage.secrets import secret_file
from gravitas.streams.webhooks.errors import WebhookRefusedError

TOLERANCE_S = 300
"""The spec's replay window: timestamps more than 5 minutes off are refused."""
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
MAX_ID_CHARS = 200


def new_secret() -> bytes:
    """A fresh ``whsec_...`` secret."""
    return b"whsec_" + base64.b64encode(secrets.token_bytes(24))


def source_secret_path(settings: Settings, source: str) -> Path:
    """Where the secret of inbound ``source`` lives."""
    conf = settings.webhook_sources[source]
    return conf.secret_file or Path(settings.data_dir) / "webhooks" / f"{source}.secret"


def source_secret(settings: Settings, source: str) -> str:
    """The secret of inbound ``source`` (generated on first use when it has no file)."""
    path = source_secret_path(settings, source)
    if settings.webhook_sources[source].secret_file is not None and not path.exists():
        raise ConfigError(f"webhook source {source!r}: secret_file {path} does not exist")
    value = secret_file(path, new_secret).decode()
    _webhook(value, f"the secret in {path}")
    return value


def _webhook(secret: str, where: str) -> Webhook:
    try:
        return Webhook(secret)
    except Exception as exc:
        raise ConfigError(f"{where} is not a whsec_<base64> secret ({exc})") from None


def sign_headers(secret: str, msg_id: str, body: bytes, at: float | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``."""
    stamp = int(time.time() if at is None else at)
    signature = Webhook(secret).sign(
        msg_id, datetime.fromtimestamp(stamp, tz=UTC), body.decode("utf-8")
    )
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature,
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> str:
    """Check the headers and signature of a call; returns its ``webhook-id``.

    Raises :class:`WebhookRefusedError` (400 missing/malformed header, 401 timestamp
    outside the +-5 minute window or no matching signature).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    missing = [h for h in HEADERS if not lower.get(h)]
    if missing:
        raise WebhookRefusedError(
            400, "headers", f"missing Standard Webhooks header(s): {', '.join(missing)}"
        )
    msg_id = lower["webhook-id"]
    if len(msg_id) > MAX_ID_CHARS or not msg_id.isprintable():
        raise WebhookRefusedError(
            400, "headers", f"webhook-id {msg_id[:40]!r} is not a printable id of <= 200 chars"
        )
    stamp_text = lower["webhook-timestamp"]
    if not stamp_text.isdigit() or len(stamp_text) > 12:
        raise WebhookRefusedError(
            400,
            "headers",
            f"webhook-timestamp {stamp_text[:40]!r} is not integer seconds since the epoch",
        )
    skew = int(stamp_text) - time.time()
    if abs(skew) > TOLERANCE_S:
        when = "old" if skew < 0 else "in the future"
        raise WebhookRefusedError(
            401,
            "timestamp",
            f"webhook-timestamp {stamp_text} is {abs(skew):.0f} s {when}; calls more than "
            f"{TOLERANCE_S} s off are refused (replay protection; check the sender's clock)",
        )
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRefusedError(400, "body", "the body is not UTF-8 text") from None
    try:
        Webhook(secret).verify(body, lower, json_parse=False)
    except (WebhookVerificationError, ValueError, binascii.Error):
        raise WebhookRefusedError(
            401,
            "signature",
            f"webhook-signature does not match the body (webhook-id {msg_id!r}): signed with "
            "another secret, or the body changed in transit",
        ) from None
    return msg_id
