"""The configured peers of a federation: node id -> Ed25519 public key and edge URL.

Registrations on ``stac.registrations`` are accepted only when signed by a configured
peer's key (or this node's own), and requests are forwarded only to a peer's configured
``api_url``, never to a URL taken from a message.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, field_validator

PUBLIC_KEY_BYTES = 32


def decode_public_key(value: str) -> bytes:
    """The 32 raw bytes of a base64 Ed25519 public key, or ValueError naming the value."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"public key {value!r} is not base64") from None
    if len(raw) != PUBLIC_KEY_BYTES:
        raise ValueError(
            f"public key {value!r} has {len(raw)} bytes, an Ed25519 key has {PUBLIC_KEY_BYTES} "
            "(print a node's key with `gravitas config --public-key`)"
        )
    return raw


class Peer(BaseModel):
    """One other node of the federation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    public_key: str
    """Base64 of the peer's raw 32-byte Ed25519 public key."""
    api_url: str
    """The peer's edge (``http(s)://host:port``); forwarded requests go here only."""

    @field_validator("public_key")
    @classmethod
    def _key(cls, value: str) -> str:
        decode_public_key(value)
        return value

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"peer api_url must be http(s)://host:port, got {value!r}")
        if parsed.query or parsed.fragment or parsed.username or parsed.password:
            raise ValueError(f"peer api_url {value!r} must not carry credentials or a query")
        return value.rstrip("/")
