"""``/tiles``: XYZ Web Mercator tiles of the node's layers, rendered from the pyramids.

``GET /tiles`` lists the layers (levels, times, value range) and the colormaps;
``GET /tiles/{layer}/{z}/{x}/{y}.png?time=&rescale=min,max&colormap=`` answers one
256 x 256 PNG (:mod:`gravitas.storage.pixels.tiles`). Public reads like the STAC API.
A bad parameter is a 400 naming it; tiles carry a strong ETag (``If-None-Match``
answers 304) and ``Cache-Control``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from gravitas.agents.services import NodeServices
from gravitas.storage.pixels.errors import PixelSearchError, TileRequestError
from gravitas.storage.pixels.tiles import (
    COLORMAPS,
    MAX_ZOOM,
    layer_range,
    parse_tile_params,
    render_tile,
)

__all__ = ["TILE_MAX_AGE_S", "tiles_router"]

TILE_MAX_AGE_S = 60
"""Browsers may reuse a tile this long, then revalidate it with its ETag (an ingest may
add data at the same time)."""


def _json(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tiles_router(services: NodeServices) -> APIRouter:
    """The tile routes of a node."""
    router = APIRouter()

    def _layers() -> list[dict[str, Any]]:
        out = []
        for info in services.layers.list():
            times = services.layers.times(info.name)
            rng = layer_range(services.block_store, info, times[-1]) if times else None
            out.append(
                {
                    "name": info.name,
                    "collection": info.collection,
                    "categorical": info.categorical,
                    "levels": [info.top_level, info.native_level],
                    "times": [_iso(t) for t in times[-500:]],
                    "range": list(rng) if rng else None,
                    "tiles": f"/tiles/{info.name}/{{z}}/{{x}}/{{y}}.png",
                }
            )
        return out

    @router.get("/tiles")
    async def layers() -> Response:
        body = {
            "layers": await services.run_compute(_layers),
            "colormaps": list(COLORMAPS),
            "max_zoom": MAX_ZOOM,
        }
        return _json(body)

    @router.get("/tiles/{layer}/{z}/{x}/{y}.png")
    async def tile(layer: str, z: str, x: str, y: str, request: Request) -> Response:
        q = request.query_params
        unknown = sorted(set(q) - {"time", "rescale", "colormap"})
        if unknown:
            return _json(
                {
                    "detail": f"unknown tile parameter {unknown[0][:40]!r}; "
                    "use time, rescale, colormap"
                },
                400,
            )
        try:
            params = parse_tile_params(
                layer, z, x, y, q.get("time"), q.get("rescale"), q.get("colormap")
            )
            rendered = await services.run_compute(
                render_tile, services.block_store, services.layers, params
            )
        except (TileRequestError, PixelSearchError) as exc:
            return _json({"detail": str(exc)}, 400)
        etag = '"' + hashlib.sha256(rendered.png).hexdigest()[:32] + '"'
        headers = {
            "ETag": etag,
            "Cache-Control": f"public, max-age={TILE_MAX_AGE_S}",
            "X-Gravitas-Level": str(rendered.level),
            "X-Gravitas-Time": _iso(rendered.timestamp),
            "X-Gravitas-Rescale": f"{rendered.rescale[0]:g},{rendered.rescale[1]:g}",
        }
        if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers=headers)
        return Response(rendered.png, media_type="image/png", headers=headers)

    return router
