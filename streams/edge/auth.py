"""Who may use the edge: a bearer token for publishing, tailing and transactions, and
peer signatures for requests forwarded by other nodes of the federation.

When ``GRAVITAS_API_TOKEN`` is not set, the node generates a token on first start into
``<data_dir>/api_token`` (mode 0600); local CLI commands and the SDK read it from there,
so a user on the same machine and account needs no configuration.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from pathlib import Path

from fastapi import HTTPException
from pydantic import SecretStr

from gravitas.agents.signing import SignatureError, UnknownPeerError, verify_request
from gravitas.schemas.settings import Settings
from gravitas.storage.secrets import secret_file
from gravitas.streams.transports.edge import TOKEN_FILE


def edge_token(settings: Settings) -> str:
    """The node's token: the setting, else ``<data_dir>/api_token`` (created if missing)."""
    if settings.api_token is not None:
        return settings.api_token.get_secret_value()
    path = Path(settings.data_dir) / TOKEN_FILE
    return secret_file(path, lambda: secrets.token_urlsafe(32).encode()).decode()


def with_token(settings: Settings) -> Settings:
    """``settings`` with ``api_token`` filled in from :func:`edge_token`."""
    if settings.api_token is not None:
        return settings
    return settings.model_copy(update={"api_token": SecretStr(edge_token(settings))})


def token_matches(token: str, authorization: str | None) -> bool:
    """Constant-time check of an ``Authorization: Bearer`` header."""
    return authorization is not None and hmac.compare_digest(
        authorization.encode(), f"Bearer {token}".encode()
    )


def require_token(token: str, authorization: str | None) -> None:
    """401 unless the request carries the node's bearer token."""
    if authorization is None:
        raise HTTPException(
            401,
            "this route needs the node's token: send Authorization: Bearer <token> (local "
            "CLI commands read it from <data dir>/api_token)",
        )
    if not token_matches(token, authorization):
        raise HTTPException(401, "wrong bearer token")


def require_token_or_peer(
    token: str,
    headers: Mapping[str, str],
    path: str,
    body: bytes,
    peer_keys: Mapping[str, str],
) -> str | None:
    """The token, or a request signed by a configured peer; returns the peer's id."""
    if token_matches(token, headers.get("authorization")):
        return None
    if "x-gravitas-signature" not in headers:
        require_token(token, headers.get("authorization"))
    try:
        return verify_request(headers, path, body, peer_keys)
    except (SignatureError, UnknownPeerError) as exc:
        raise HTTPException(401, f"forwarded request refused: {exc}") from exc
