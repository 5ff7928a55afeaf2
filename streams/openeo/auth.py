"""openEO authentication tied to the edge's token (docs/security.md).

``GET /credentials/basic`` takes HTTP Basic credentials whose password is the node's
bearer token (``GRAVITAS_API_TOKEN`` or ``<data dir>/api_token``) and any user name of
letters, digits, ``_.-`` (at most 64). It answers an access token
``<user>~<HMAC-SHA256(node token, user)>``: the user name travels with it, and only a
holder of the node token can mint one. Clients then send
``Authorization: Bearer basic//<access token>`` (the openEO 1.2 form); the node token
itself (``Bearer basic//<node token>`` or ``Bearer <node token>``) is accepted as user
``node``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

from gravitas.streams.openeo.errors import (
    AuthenticationRequiredError,
    CredentialsInvalidError,
    TokenInvalidError,
)

USER_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
NODE_USER = "node"


def _mac(token: str, user: str) -> str:
    return hmac.new(token.encode(), user.encode(), hashlib.sha256).hexdigest()


def access_token(token: str, user: str) -> str:
    """The access token of ``user`` on a node whose edge token is ``token``."""
    return f"{user}~{_mac(token, user)}"


def basic_login(token: str, authorization: str | None) -> tuple[str, str]:
    """``(user, access token)`` for HTTP Basic credentials carrying the node token."""
    if not authorization or not authorization.startswith("Basic "):
        raise AuthenticationRequiredError(
            "send HTTP Basic credentials: any user name and the node's token as password"
        )
    try:
        raw = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise CredentialsInvalidError(
            "the Basic credentials are not base64 of user:password"
        ) from None
    user, sep, password = raw.partition(":")
    if not sep or not USER_RE.match(user):
        raise CredentialsInvalidError(
            f"user name {user[:64]!r} is invalid: use 1-64 letters, digits, '_', '.' or '-'"
        )
    if not hmac.compare_digest(password.encode(), token.encode()):
        raise CredentialsInvalidError(f"wrong password for user {user!r}: use the node's token")
    return user, access_token(token, user)


def current_user(token: str, authorization: str | None) -> str:
    """The user of a request's bearer token (401 without one, 403 for a wrong one)."""
    if not authorization:
        raise AuthenticationRequiredError(
            "this endpoint needs authentication: GET /credentials/basic with the node's token"
        )
    if not authorization.startswith("Bearer "):
        raise AuthenticationRequiredError("send Authorization: Bearer basic//<access token>")
    bearer = authorization[7:].strip()
    if bearer.startswith("basic//"):
        bearer = bearer[7:]
    if hmac.compare_digest(bearer.encode(), token.encode()):
        return NODE_USER
    user, sep, mac = bearer.partition("~")
    if (
        sep
        and USER_RE.match(user)
        and hmac.compare_digest(mac.encode(), _mac(token, user).encode())
    ):
        return user
    raise TokenInvalidError("the bearer token is invalid: log in again at /credentials/basic")
