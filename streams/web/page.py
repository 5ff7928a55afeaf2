"""The node's web page: ``/`` (a Leaflet map), its static files, the Natural Earth
country outlines as GeoJSON and the footprints of the federated catalog.

The map library is installed from npm at build time (``scripts/build-web`` copies it to
``static/vendor``); nothing is loaded from another origin at run time, and the page's
Content-Security-Policy says so (``default-src 'self'``).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from gravitas.agents.services import NodeServices
from gravitas.schemas.errors import GravitasError
from gravitas.storage.catalog.base import MAX_LIMIT, NODE_PROPERTY, SearchParams
from gravitas.streams.web.cube_quicklooks import (
    cube_quicklooks_router,
    cube_quicklooks_url,
    is_datacube_item,
)
from gravitas.streams.web.quicklooks import quicklook_url, quicklooks_router

__all__ = [
    "MAX_FOOTPRINTS",
    "STATIC_DIR",
    "countries_geojson",
    "footprints",
    "page_router",
]

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_FOOTPRINTS = 5000
"""The map draws at most this many catalog items (newest pages first)."""
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".html": "text/html",
}
_STATIC_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,200}")
"""Static paths: plain names (no NUL, no backslash, no leading dot or slash)."""


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@functools.cache
def countries_geojson() -> bytes:
    """Natural Earth 1:110m countries (sample ``naturalearth_lowres``) as GeoJSON."""
    import pyogrio
    import shapely

    from gravitas.storage.basemap import SAMPLE
    from gravitas.storage.sampledata import fetch

    folder = fetch(SAMPLE)
    _meta, _fids, geoms, fields = pyogrio.raw.read(
        folder / "naturalearth_lowres.shp", columns=["name"]
    )
    features = [
        {
            "type": "Feature",
            "properties": {"name": str(name)},
            "geometry": orjson.loads(shapely.to_geojson(shape)),
        }
        for name, shape in zip(fields[0], shapely.from_wkb(geoms), strict=True)
    ]
    return orjson.dumps({"type": "FeatureCollection", "features": features})


def footprints(services: NodeServices) -> dict[str, Any]:
    """The federated catalog's items as a GeoJSON FeatureCollection (geometry, id,
    collection, owning node, datetime, quicklook)."""
    features: list[dict[str, Any]] = []
    token: str | None = None
    store = services.object_store
    while len(features) < MAX_FOOTPRINTS:
        page = services.catalog.search(SearchParams(federated=True, limit=MAX_LIMIT, token=token))
        for item in page.items:
            if not item.get("geometry"):
                continue
            props = item.get("properties") or {}
            node = str(props.get(NODE_PROPERTY, ""))
            cube = is_datacube_item(item) and (
                node in services.settings.peers or node in ("", services.settings.node_id)
            )
            features.append(
                {
                    "type": "Feature",
                    "id": f"{item.get('collection', '')}/{item.get('id', '')}",
                    "geometry": item["geometry"],
                    "properties": {
                        "id": item.get("id"),
                        "collection": item.get("collection"),
                        "node": str(props.get(NODE_PROPERTY, "")),
                        "datetime": props.get("datetime") or props.get("start_datetime"),
                        "quicklook": quicklook_url(
                            item, store, str(props.get(NODE_PROPERTY, "")), services.settings
                        ),
                        "cube_quicklooks": cube_quicklooks_url(
                            node or services.settings.node_id, str(item.get("collection"))
                        )
                        if cube
                        else None,
                        "properties": props,
                    },
                }
            )
        token = page.next_token
        if not token:
            break
    nodes = sorted({f["properties"]["node"] for f in features})
    return {
        "type": "FeatureCollection",
        "features": features[:MAX_FOOTPRINTS],
        "nodes": nodes,
        "this_node": services.settings.node_id,
    }


def page_router(services: NodeServices) -> APIRouter:
    """``/``, ``/static/...``, ``/web/countries.geojson``, ``/web/footprints`` and the
    peers' quicklooks (:mod:`.quicklooks`)."""
    router = APIRouter()
    router.include_router(quicklooks_router(services.settings))
    router.include_router(cube_quicklooks_router(services))

    @router.get("/", include_in_schema=False)
    async def index() -> Response:
        html = (STATIC_DIR / "index.html").read_bytes()
        return Response(
            html,
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"},
        )

    @router.get("/static/{path:path}", include_in_schema=False)
    async def static(path: str) -> Response:
        target = STATIC_DIR / "-"  # not a file
        if _STATIC_PATH.fullmatch(path):
            target = (STATIC_DIR / path).resolve()
        if (
            not target.is_relative_to(STATIC_DIR)
            or not target.is_file()
            or target.suffix not in _TYPES
        ):
            return Response(
                orjson.dumps({"detail": f"no static file {path[:80]!r}"}),
                status_code=404,
                media_type="application/json",
            )
        return FileResponse(
            target,
            media_type=_TYPES[target.suffix],
            headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    @router.get("/web/countries.geojson", include_in_schema=False)
    async def countries() -> Response:
        try:
            body = await services.run_compute(countries_geojson)
        except (GravitasError, OSError) as exc:
            return Response(
                orjson.dumps({"detail": f"no country outlines: {exc}"}),
                status_code=503,
                media_type="application/json",
            )
        return Response(
            body,
            media_type="application/geo+json",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @router.get("/web/footprints", include_in_schema=False)
    async def items() -> Response:
        return _json(await services.run_compute(footprints, services))

    return router
