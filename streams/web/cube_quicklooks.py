"""Quicklooks of datacube split items for the web map's popups.

A datacube's split items (``<collection>-train`` ...) carry only the cube as an asset;
its quicklooks are assets of the collection, ``quicklook_<modality>`` (one map figure per
modality, :mod:`gravitas.agents.datacube.write`). The page asks
``GET /web/datacube-quicklooks/{node}/{collection}`` and gets, per modality, a caption
placing the picture (modality, region, time span, units) and a same-origin image URL:

- this node's collection: read from its own catalog; the image is shown through the
  asset route ``/stac/assets/<key>``;
- a configured peer's: read from the peer's published STAC route
  ``<peer api_url>/stac/collections/<collection>`` (no redirects, at most
  :data:`MAX_COLLECTION_BYTES`); the image goes through ``/web/quicklooks/<peer>/<key>``
  (:mod:`.quicklooks`).

Only a datacube's own quicklooks qualify: the collection is ``datacube-<request id>``
and the asset ``quicklook_<m>`` names the object ``datacubes/<request id>/quicklook_<m>.png``
(of this node's store, or under the peer's asset route). Any other collection, asset,
key, node or origin is refused naming the value; nothing is fetched from an href.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from gravitas.agents.services import NodeServices
from gravitas.schemas.errors import GravitasError
from gravitas.storage.objects.public import asset_url, key_of_href
from gravitas.streams.web.quicklooks import PEER_ROUTE, peer_key

__all__ = [
    "CUBE_ROUTE",
    "MAX_COLLECTION_BYTES",
    "cube_quicklooks",
    "cube_quicklooks_router",
    "cube_quicklooks_url",
    "is_datacube_item",
]

CUBE_ROUTE = "/web/datacube-quicklooks"
MAX_COLLECTION_BYTES = 1024 * 1024
TIMEOUT_S = 3.0
_COLLECTION = re.compile(r"datacube-([A-Za-z0-9][A-Za-z0-9_.:-]{0,199})")
_ASSET = re.compile(r"quicklook_([A-Za-z0-9][A-Za-z0-9_.-]{0,63})")


class CubeQuicklookError(GravitasError):
    """A datacube quicklook that cannot be shown (the message names the value)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def is_datacube_item(item: dict[str, Any]) -> bool:
    """True for a datacube split item (its collection ``datacube-...``, a split named)."""
    props = item.get("properties") or {}
    return "gravitas:split" in props and bool(_COLLECTION.fullmatch(str(item.get("collection"))))


def cube_quicklooks_url(node: str, collection: str) -> str:
    """The page's (same-origin) URL listing one datacube collection's quicklooks."""
    return f"{CUBE_ROUTE}/{quote(node, safe='')}/{quote(collection, safe='')}"


def _expected_key(request_id: str, asset: str) -> str:
    return f"datacubes/{request_id}/{asset}.png"


def _caption(coll: dict[str, Any], modality: str) -> str:
    """Where and when the picture is, and in what units (the figure's own title, colour
    bar and axes say the same)."""
    from gravitas.kernels.mapfigure import describe_bbox

    extent = coll.get("extent") or {}
    where = "region unknown"
    try:
        w, s, e, n = (float(v) for v in extent["spatial"]["bbox"][0][:4])
        where = describe_bbox((w, s, e, n))
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    when = "time unknown"
    try:
        t0, t1 = extent["temporal"]["interval"][0][:2]
        when = f"{str(t0)[:10]} to {str(t1)[:10]}" if t0 != t1 else str(t0)[:10]
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    bands = ((coll.get("cube:dimensions") or {}).get("band") or {}).get("values") or []
    band = next((str(b) for b in bands if str(b).startswith(f"{modality}:")), modality)
    return (
        f"{band} over {where}; median over time, {when}; "
        f"in the units of the source layer (colour bar)"
    )


def _quicklooks(
    coll: dict[str, Any], collection: str, key_of: Any, url_of: Any
) -> list[dict[str, str]]:
    """The collection's datacube quicklooks as (modality, caption, url), or raise naming
    the first refused asset when there is none."""
    match = _COLLECTION.fullmatch(collection)
    assert match is not None
    request_id = match.group(1)
    out: list[dict[str, str]] = []
    refused: list[str] = []
    assets = coll.get("assets") if isinstance(coll.get("assets"), dict) else {}
    for name, asset in sorted((assets or {}).items()):
        m = _ASSET.fullmatch(str(name))
        if m is None or not isinstance(asset, dict):
            continue
        href = str(asset.get("href", ""))
        key = key_of(href)
        if key != _expected_key(request_id, str(name)):
            refused.append(f"{name}: {href[:160]!r} is not {_expected_key(request_id, name)!r}")
            continue
        out.append({
            "modality": m.group(1),
            "caption": _caption(coll, m.group(1)),
            "url": url_of(key),
        })  # fmt: skip
    if not out:
        why = "; ".join(refused) or "no quicklook_<modality> asset"
        raise CubeQuicklookError(404, f"collection {collection!r} has no datacube quicklook: {why}")
    return out


async def _peer_collection(services: NodeServices, node: str, collection: str) -> dict[str, Any]:
    peer = services.settings.peers[node]
    url = f"{peer.api_url}/stac/collections/{quote(collection, safe='')}"
    try:
        async with (
            httpx.AsyncClient(follow_redirects=False, timeout=TIMEOUT_S) as http,
            http.stream("GET", url) as reply,
        ):
            if reply.status_code != 200:
                raise CubeQuicklookError(
                    502, f"peer {node!r} answered HTTP {reply.status_code} for {collection!r}"
                )
            body = b""
            async for chunk in reply.aiter_bytes():
                body += chunk
                if len(body) > MAX_COLLECTION_BYTES:
                    raise CubeQuicklookError(
                        502, f"peer {node!r}: collection over {MAX_COLLECTION_BYTES} bytes"
                    )
    except httpx.HTTPError as exc:
        raise CubeQuicklookError(502, f"peer {node!r} unreachable: {type(exc).__name__}") from None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise CubeQuicklookError(502, f"peer {node!r}: {collection!r} is not JSON") from None
    if not isinstance(doc, dict) or doc.get("id") != collection:
        raise CubeQuicklookError(502, f"peer {node!r} answered another document for {collection!r}")
    return doc


async def cube_quicklooks(services: NodeServices, node: str, collection: str) -> dict[str, Any]:
    """The quicklooks of datacube ``collection`` owned by ``node`` (this node or a
    configured peer), or raise :class:`CubeQuicklookError` naming the bad value."""
    settings = services.settings
    if node != settings.node_id and node not in settings.peers:
        raise CubeQuicklookError(
            404, f"node {node[:64]!r} is neither this node nor a configured peer (GRAVITAS_PEERS)"
        )
    if not _COLLECTION.fullmatch(collection):
        raise CubeQuicklookError(
            404, f"{collection[:120]!r} is not a datacube collection (datacube-<request id>)"
        )
    if node == settings.node_id:
        try:
            coll = await services.run_compute(services.catalog.get_collection, collection)
        except GravitasError:
            raise CubeQuicklookError(
                404, f"collection {collection!r} not found on node {node!r}"
            ) from None
        store = services.object_store
        looks = _quicklooks(
            coll, collection, lambda href: key_of_href(store, href), lambda k: asset_url("", k)
        )
    else:
        coll = await _peer_collection(services, node, collection)
        peer = settings.peers[node]
        looks = _quicklooks(
            coll,
            collection,
            lambda href: peer_key(href, peer),
            lambda k: f"{PEER_ROUTE}/{quote(node, safe='')}/{quote(k, safe='/')}",
        )
    return {"node": node, "collection": collection, "quicklooks": looks}


def cube_quicklooks_router(services: NodeServices) -> APIRouter:
    """``GET /web/datacube-quicklooks/{node}/{collection}``."""
    router = APIRouter()

    @router.get(CUBE_ROUTE + "/{node}/{collection}", include_in_schema=False)
    async def datacube_quicklooks(node: str, collection: str) -> Response:
        try:
            body = await cube_quicklooks(services, node, collection)
        except CubeQuicklookError as exc:
            return Response(
                orjson.dumps({"detail": str(exc)}),
                status_code=exc.status,
                media_type="application/json",
            )
        return Response(
            orjson.dumps(body),
            media_type="application/json",
            headers={"Cache-Control": "public, max-age=60"},
        )

    return router
