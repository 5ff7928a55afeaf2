"""ASGI middleware in front of the whole edge: request bodies bounded while they stream,
cross-origin writes refused, and the STAC API's public reads open to any origin.

* Body limit: a ``Content-Length`` over the limit is answered 413 before one byte of
  the body is read; a chunked body is counted as it arrives and cut off with 413 as
  soon as it passes the limit (the handler never sees more than the limit).
* Origin: browsers send ``Origin`` on cross-origin requests. Only ``GET``/``HEAD`` of
  the public reads (``/stac``, ``/healthz``) are served to a foreign origin (the STAC
  API with ``Access-Control-Allow-Origin: *``, no credentials); every other request
  with a foreign ``Origin`` (and every CORS preflight) is refused with 403.
* Host: only requests naming this node (a loopback name, ``http_host`` or the host of
  ``public_url``) in their ``Host`` header are served, so a web page cannot reach the
  edge through a DNS name rebound to 127.0.0.1.
* CSRF: a write whose ``Content-Type`` is one a web form can send without a preflight
  (``text/plain``, ``application/x-www-form-urlencoded``, ``multipart/form-data``) is
  refused with 415, whatever its origin.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from urllib.parse import urlsplit

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PUBLIC_READ_PREFIXES = ("/stac", "/healthz")
CORS_PREFIXES = ("/stac",)
FORM_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
SAFE_METHODS = ("GET", "HEAD")
NO_BODY_METHODS = ("GET", "HEAD", "DELETE")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


class BodyTooLargeError(Exception):
    """Raised from ``receive`` when a streamed body passes the limit."""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


async def _refuse(send: Send, status: int, message: str) -> None:
    body = orjson.dumps({"detail": message})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class EdgeGuard:
    """Body limit, Origin and content-type checks for every route of the edge."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        trusted_origins: Iterable[str] = (),
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.trusted_origins = {_origin(o) for o in trusted_origins if o}
        self.allowed_hosts = {h.lower().strip("[]") for h in (*LOOPBACK_NAMES, *allowed_hosts) if h}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        path = scope["path"]
        problem = self._check(method, path, headers, scope.get("scheme", "http"))
        if problem is not None:
            await _refuse(send, *problem)
            return
        limit = self.max_body_bytes
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await _refuse(send, 400, f"Content-Length {length[:40]!r} is not a number")
                return
            if int(length) > limit:
                await _refuse(
                    send,
                    413,
                    f"request body of {int(length)} bytes exceeds the limit of {limit} bytes "
                    "(GRAVITAS_MAX_BODY_BYTES)",
                )
                return
        if method in NO_BODY_METHODS and "transfer-encoding" in headers:
            await _refuse(send, 400, f"{method} {path} takes no request body")
            return
        received = 0
        started = False
        refused = False

        async def counted_receive() -> Message:
            nonlocal received, started, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started:  # answer now: frameworks turn errors here into 400s
                        started = refused = True
                        await _refuse(
                            send,
                            413,
                            f"request body passed the limit of {limit} bytes while "
                            "streaming (GRAVITAS_MAX_BODY_BYTES)",
                        )
                    raise BodyTooLargeError
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out already; drop whatever the app answers
            if message["type"] == "http.response.start":
                started = True
                if path.startswith(CORS_PREFIXES) and "origin" in headers:
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"access-control-allow-origin", b"*"),
                    ]
            await send(message)

        with contextlib.suppress(BodyTooLargeError):
            await self.app(scope, counted_receive, tracked_send)

    def _check(
        self, method: str, path: str, headers: dict[str, str], scheme: str
    ) -> tuple[int, str] | None:
        host = urlsplit(f"//{headers.get('host', '')}").hostname or ""
        if host not in self.allowed_hosts:
            return (
                403,
                f"Host {headers.get('host', '')[:100]!r} is not this node; use its address "
                "or GRAVITAS_PUBLIC_URL",
            )
        origin = headers.get("origin")
        own = {f"{scheme}://{headers.get('host', '')}".lower(), *self.trusted_origins}
        if origin is not None and _origin(origin) not in own:
            public = method in SAFE_METHODS and path.startswith(PUBLIC_READ_PREFIXES)
            if not public:
                return (
                    403,
                    f"cross-origin {method} {path} from Origin {origin[:100]!r} refused: only "
                    "GET of the STAC API is served to other origins",
                )
        if method not in SAFE_METHODS and method != "OPTIONS":
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype in FORM_TYPES:
                return (
                    415,
                    f"Content-Type {ctype!r} is refused for {method} {path} (a web page can "
                    "send it cross-site); send application/json or application/x-ndjson",
                )
        return None
