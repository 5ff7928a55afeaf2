"""Quicklooks for the web map's popups, always same-origin.

- An item of this node: its quicklook asset is a published object of the node's store,
  shown through the asset route ``/stac/assets/<key>``.
- An item of a configured peer: its registration names the peer's asset route
  (``<peer api_url>/stac/assets/<key>``); the page gets ``/web/quicklooks/<peer>/<key>``,
  which this node fetches from that peer's configured ``api_url`` only (no redirects,
  at most :data:`MAX_BYTES`, images only). The page's CSP keeps ``img-src 'self'``.

Anything else (a raw object-store href, an unpublished key, an unknown node, another
origin) gets no quicklook.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

import httpx
import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from gravitas.schemas.errors import UnsafePathError
from gravitas.schemas.peers import Peer
from gravitas.schemas.settings import Settings
from gravitas.storage.objects.base import ObjectStore
from gravitas.storage.objects.keys import check_key
from gravitas.storage.objects.public import ASSETS_PATH, asset_url, is_published, key_of_href

__all__ = [
    "MAX_BYTES",
    "PEER_ROUTE",
    "QUICKLOOK_ROLES",
    "peer_key",
    "quicklook_url",
    "quicklooks_router",
]

QUICKLOOK_ROLES = ("overview", "thumbnail", "visual")
PEER_ROUTE = "/web/quicklooks"
MAX_BYTES = 8 * 1024 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
TIMEOUT_S = 10.0


def _published_key(text: str) -> str | None:
    try:
        key = check_key(text)
    except UnsafePathError:
        return None
    return key if is_published(key) else None


def peer_key(href: str, peer: Peer) -> str | None:
    """The published key ``href`` names under ``peer``'s asset route, or None."""
    route = f"{peer.api_url}{ASSETS_PATH}/"
    if not href.startswith(route):
        return None
    return _published_key(unquote(href[len(route) :].split("?")[0].split("#")[0]))


def quicklook_url(
    item: dict[str, Any], store: ObjectStore, owner: str = "", settings: Settings | None = None
) -> str | None:
    """The same-origin URL of an item's quicklook, or None (see the module docstring).
    ``owner`` is the node owning the item; ``settings`` gives this node's peers."""
    peer = settings.peers.get(owner) if settings is not None and owner else None
    for asset in (item.get("assets") or {}).values():
        if not isinstance(asset, dict):
            continue
        roles = asset.get("roles") or []
        if not any(r in roles for r in QUICKLOOK_ROLES):
            continue
        href = str(asset.get("href", ""))
        key = key_of_href(store, href)
        if key is not None:
            return asset_url("", key)
        if peer is not None:
            key = peer_key(href, peer)
            if key is not None:
                return f"{PEER_ROUTE}/{quote(owner, safe='')}/{quote(key, safe='/')}"
    return None


def _refuse(status: int, message: str) -> Response:
    return Response(
        orjson.dumps({"detail": message}), status_code=status, media_type="application/json"
    )


def quicklooks_router(settings: Settings) -> APIRouter:
    """``GET /web/quicklooks/{node}/{key}``: a configured peer's published quicklook."""
    router = APIRouter()

    @router.get(PEER_ROUTE + "/{node}/{key:path}", include_in_schema=False)
    async def peer_quicklook(node: str, key: str) -> Response:
        peer = settings.peers.get(node)
        if peer is None:
            return _refuse(
                404, f"node {node[:64]!r} is not a configured peer (GRAVITAS_PEERS); no quicklook"
            )
        checked = _published_key(key)
        if checked is None:
            return _refuse(404, f"{key[:120]!r} is no published object key; no quicklook")
        url = asset_url(peer.api_url, checked)
        try:
            async with (
                httpx.AsyncClient(follow_redirects=False, timeout=TIMEOUT_S) as http,
                http.stream("GET", url) as reply,
            ):
                kind = reply.headers.get("content-type", "").split(";")[0].strip().lower()
                if reply.status_code != 200 or kind not in IMAGE_TYPES:
                    return _refuse(
                        502, f"peer {node!r} answered HTTP {reply.status_code} {kind!r} for {key!r}"
                    )
                body = b""
                async for chunk in reply.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BYTES:
                        return _refuse(502, f"peer {node!r}: quicklook over {MAX_BYTES} bytes")
        except httpx.HTTPError as exc:
            return _refuse(502, f"peer {node!r} unreachable: {type(exc).__name__}")
        return Response(
            body,
            media_type=kind,
            headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    return router
