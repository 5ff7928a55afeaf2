"""FastAPI routes of the STAC API (core, collections, features, item search, filter,
sort, transactions)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import orjson
from fastapi import APIRouter, Body, Header, HTTPException, Request
from fastapi.responses import Response

from gravitas.schemas.errors import InputError, NotFoundError, StorageError
from gravitas.schemas.settings import Settings
from gravitas.storage.catalog.base import Catalog, SearchPage, SearchParams
from gravitas.storage.catalog.collections import STAC_VERSION
from gravitas.storage.catalog.errors import CollectionNotFoundError, InvalidItemError
from gravitas.storage.objects.base import ObjectStore
from gravitas.storage.objects.public import internal_item, public_item
from gravitas.streams.edge.auth import require_token
from gravitas.streams.stac.assets import assets_router
from gravitas.streams.stac.conformance import CONFORMANCE
from gravitas.streams.stac.links import (
    GEOJSON,
    JSON,
    collection_links,
    item_links,
    link,
    with_query,
)
from gravitas.streams.stac.params import params_from_body, params_from_query

__all__ = ["STAC_PREFIX", "stac_router"]

STAC_PREFIX = "/stac"
"""Where the STAC API lives on the node's edge."""
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"


def _json(body: Any, status: int = 200, media_type: str = JSON) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=media_type)


def _error(status: int, code: str, description: str) -> Response:
    return _json({"code": code, "description": description}, status)


class _Failure(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


@contextmanager
def _mapped() -> Iterator[None]:
    """Turn gravitas errors into STAC API error documents (400 / 404 / 503)."""
    try:
        yield
    except NotFoundError as exc:
        raise _Failure(_error(404, "NotFound", str(exc))) from exc
    except InputError as exc:
        raise _Failure(_error(400, "BadRequest", str(exc))) from exc
    except StorageError as exc:  # e.g. the catalog database restarts; no internal address out
        text = f"the node's {type(exc).__name__} is transient; retry the request shortly"
        raise _Failure(_error(503, "ServiceUnavailable", text)) from exc


def _guard(fn: Callable[[], Response]) -> Response:
    try:
        with _mapped():
            return fn()
    except _Failure as failure:
        return failure.response


class Registrations(Protocol):
    """Where transactions go when the node publishes its registrations to the federation."""

    def upsert(self, item: dict[str, Any]) -> None:
        """Store the item (next version) and publish its registration."""
        ...

    def delete(self, collection_id: str, item_id: str) -> bool:
        """Delete the item and publish its retraction; False if it did not exist."""
        ...


def stac_router(
    catalog: Catalog,
    settings: Settings,
    prefix: str = STAC_PREFIX,
    registrations: Registrations | None = None,
    objects: ObjectStore | None = None,
) -> APIRouter:
    """The STAC API over ``catalog`` (any backend); writes need ``Authorization: Bearer
    <api_token>``.

    With ``registrations``, item writes are versioned and published on
    ``stac.registrations`` so the other nodes of the federation see them. With
    ``objects``, the node's object store is served under ``{prefix}/assets/{key}`` and
    every href into it is answered as a URL of that route.
    """

    def store(doc: dict[str, Any]) -> bool:
        if registrations is None:
            return catalog.upsert_item(doc)
        registrations.upsert(doc)
        return True

    def remove(collection_id: str, item_id: str) -> bool:
        if registrations is None:
            return catalog.delete_item(collection_id, item_id)
        return registrations.delete(collection_id, item_id)

    router = APIRouter(prefix=prefix, tags=["stac"])
    if objects is not None:
        router.include_router(assets_router(objects, prefix=""))

    def base(request: Request) -> str:
        """Links follow the URL the client used, so paging works from wherever it is."""
        return str(request.base_url).rstrip("/") + prefix

    def require_collection(request: Request, collection_id: str) -> dict[str, Any]:
        try:
            return catalog.get_collection(collection_id)
        except CollectionNotFoundError as exc:
            raise CollectionNotFoundError(
                f"collection {collection_id!r} not found on node {settings.node_id}; "
                f"GET {base(request)}/collections lists the collections"
            ) from exc

    def authorise(authorization: str | None) -> None:
        if settings.api_token is None:
            raise HTTPException(
                403,
                "STAC transactions are disabled on this node: no API token is configured; "
                "set GRAVITAS_API_TOKEN and send Authorization: Bearer <token>",
            )
        require_token(settings.api_token.get_secret_value(), authorization)

    def public(b: str, doc: dict[str, Any]) -> dict[str, Any]:
        """Hrefs into the object store as asset-route URLs: on the edge's public URL
        setting (what the registrations carry too), else where the client asked."""
        if objects is None:
            return doc
        return public_item(doc, objects, settings.public_url or b.removesuffix(prefix))

    def internal(request: Request, doc: dict[str, Any]) -> dict[str, Any]:
        """A written item's asset-route URLs back to the store's hrefs (round trips)."""
        if objects is None:
            return doc
        bases = (str(request.base_url), *([settings.public_url] if settings.public_url else []))
        return internal_item(doc, objects, bases)

    def out_item(b: str, item: dict[str, Any]) -> dict[str, Any]:
        item["links"] = item_links(b, item)
        item["stac_version"] = STAC_VERSION
        item.setdefault("stac_extensions", [])
        item.setdefault("assets", {})
        return public(b, item)

    def out_collection(b: str, coll: dict[str, Any]) -> dict[str, Any]:
        coll["links"] = collection_links(b, coll["id"], coll)
        coll["stac_version"] = STAC_VERSION
        coll.setdefault("stac_extensions", [])
        return public(b, coll)

    def feature_collection(
        b: str, page: SearchPage, self_href: str, next_link: dict[str, Any] | None
    ) -> Response:
        links = [link("self", self_href, GEOJSON), link("root", b)]
        if next_link is not None:
            links.append(next_link)
        return _json(
            {
                "type": "FeatureCollection",
                "features": [out_item(b, it) for it in page.items],
                "links": links,
                "numberMatched": page.matched,
                "numberReturned": len(page.items),
            },
            media_type=GEOJSON,
        )

    def get_page(request: Request, url: str, params: SearchParams) -> Response:
        page = catalog.search(params)
        nxt = None
        if page.next_token:
            query = dict(request.query_params)
            query["token"] = page.next_token
            nxt = link("next", with_query(url, query), GEOJSON, method="GET")
        return feature_collection(base(request), page, str(request.url), nxt)

    # --- core ----------------------------------------------------------------------

    @router.get("", include_in_schema=False)
    @router.get("/")
    def landing(request: Request) -> Response:
        """Landing page: links to conformance, collections, search, queryables."""
        b = base(request)
        links = [
            link("self", b),
            link("root", b),
            link("conformance", f"{b}/conformance"),
            link("data", f"{b}/collections"),
            link("search", f"{b}/search", GEOJSON, method="GET"),
            link("search", f"{b}/search", GEOJSON, method="POST"),
            link("service-desc", f"{b}/api", OPENAPI),
            link(
                "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                f"{b}/queryables",
                "application/schema+json",
            ),
        ]
        for coll in catalog.list_collections():
            links.append(link("child", f"{b}/collections/{coll['id']}", title=coll.get("title")))
        return _json(
            {
                "type": "Catalog",
                "id": f"gravitas-{settings.node_id}",
                "title": f"gravitas node {settings.node_id}",
                "description": f"STAC API of gravitas node {settings.node_id}",
                "stac_version": STAC_VERSION,
                "conformsTo": CONFORMANCE,
                "links": links,
            }
        )

    @router.get("/api")
    def service_desc(request: Request) -> Response:
        """The OpenAPI document of the node's edge."""
        return _json(request.app.openapi(), media_type=OPENAPI)

    @router.get("/conformance")
    def conformance() -> Response:
        """The conformance classes."""
        return _json({"conformsTo": CONFORMANCE})

    def queryables_doc(b: str, cid: str | None) -> dict[str, Any]:
        url = f"{b}/collections/{cid}/queryables" if cid else f"{b}/queryables"
        return {
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "$id": url,
            "type": "object",
            "title": "Queryables",
            "properties": {
                "id": {"type": "string", "title": "Item id"},
                "collection": {"type": "string", "title": "Collection id"},
                "geometry": {"$ref": "https://geojson.org/schema/Geometry.json"},
                "datetime": {"type": "string", "format": "date-time"},
                "eo:cloud_cover": {"type": "number", "minimum": 0, "maximum": 100},
                "platform": {"type": "string"},
                "gravitas:node": {"type": "string", "title": "Owning node"},
            },
            "additionalProperties": True,
        }

    @router.get("/queryables")
    def queryables(request: Request) -> Response:
        """Properties a CQL2 filter may use (any item property is accepted)."""
        return _json(queryables_doc(base(request), None), media_type="application/schema+json")

    @router.get("/collections/{collection_id}/queryables")
    def collection_queryables(request: Request, collection_id: str) -> Response:
        """Queryables of one collection."""

        def run() -> Response:
            require_collection(request, collection_id)
            doc = queryables_doc(base(request), collection_id)
            return _json(doc, media_type="application/schema+json")

        return _guard(run)

    # --- collections and features ----------------------------------------------------

    @router.get("/collections")
    def collections(request: Request) -> Response:
        """Every collection."""
        b = base(request)
        colls = [out_collection(b, c) for c in catalog.list_collections()]
        return _json(
            {
                "collections": colls,
                "links": [link("self", f"{b}/collections"), link("root", b), link("parent", b)],
            }
        )

    @router.get("/collections/{collection_id}")
    def collection(request: Request, collection_id: str) -> Response:
        """One collection."""
        return _guard(
            lambda: _json(out_collection(base(request), require_collection(request, collection_id)))
        )

    @router.get("/collections/{collection_id}/items")
    def items(request: Request, collection_id: str) -> Response:
        """Items of one collection (bbox, datetime, limit, filter, sortby, token)."""

        def run() -> Response:
            require_collection(request, collection_id)
            params = params_from_query(request.query_params, collection=collection_id)
            url = f"{base(request)}/collections/{collection_id}/items"
            return get_page(request, url, params)

        return _guard(run)

    @router.get("/collections/{collection_id}/items/{item_id}")
    def item(request: Request, collection_id: str, item_id: str) -> Response:
        """One item."""

        def run() -> Response:
            require_collection(request, collection_id)
            found = catalog.get_item(collection_id, item_id)
            return _json(out_item(base(request), found), media_type=GEOJSON)

        return _guard(run)

    # --- item search -------------------------------------------------------------------

    @router.get("/search")
    def search_get(request: Request) -> Response:
        """Item search with query parameters."""
        return _guard(
            lambda: get_page(
                request, f"{base(request)}/search", params_from_query(request.query_params)
            )
        )

    @router.post("/search")
    def search_post(
        request: Request, body: dict[str, Any] = Body(default_factory=dict)
    ) -> Response:
        """Item search with a JSON body; the next link repeats the body with a token."""

        def run() -> Response:
            params = params_from_body(body)
            page = catalog.search(params)
            b = base(request)
            nxt = None
            if page.next_token:
                nxt = link(
                    "next",
                    f"{b}/search",
                    GEOJSON,
                    method="POST",
                    body={**body, "token": page.next_token},
                    merge=False,
                )
            return feature_collection(b, page, f"{b}/search", nxt)

        return _guard(run)

    # --- transactions --------------------------------------------------------------------

    @router.post("/collections")
    def create_collection(
        request: Request,
        body: dict[str, Any] = Body(...),
        authorization: str | None = Header(default=None),
    ) -> Response:
        """Create a collection (409 if it exists)."""
        authorise(authorization)

        def run() -> Response:
            cid = body.get("id")
            if not isinstance(cid, str) or not cid:
                raise InvalidItemError(f"collection needs a string 'id', got {cid!r}")
            if any(c["id"] == cid for c in catalog.list_collections()):
                return _error(409, "Conflict", f"collection {cid!r} exists; use PUT to replace")
            catalog.upsert_collection(_strip_links(body))
            return _json(out_collection(base(request), catalog.get_collection(cid)), 201)

        return _guard(run)

    @router.put("/collections/{collection_id}")
    def update_collection(
        request: Request,
        collection_id: str,
        body: dict[str, Any] = Body(...),
        authorization: str | None = Header(default=None),
    ) -> Response:
        """Replace a collection (404 if missing)."""
        authorise(authorization)

        def run() -> Response:
            if body.get("id", collection_id) != collection_id:
                raise InvalidItemError(
                    f"body id {body.get('id')!r} differs from the path id {collection_id!r}"
                )
            require_collection(request, collection_id)
            catalog.upsert_collection({**_strip_links(body), "id": collection_id})
            return _json(out_collection(base(request), catalog.get_collection(collection_id)))

        return _guard(run)

    @router.delete("/collections/{collection_id}")
    def delete_collection(
        collection_id: str,
        authorization: str | None = Header(default=None),
    ) -> Response:
        """Delete a collection and its items."""
        authorise(authorization)
        if not catalog.delete_collection(collection_id):
            return _error(404, "NotFound", f"collection {collection_id!r} not found")
        return Response(status_code=204)

    @router.post("/collections/{collection_id}/items")
    def create_items(
        request: Request,
        collection_id: str,
        body: dict[str, Any] = Body(...),
        authorization: str | None = Header(default=None),
    ) -> Response:
        """Create an item, or every item of a FeatureCollection (409 if one exists)."""
        authorise(authorization)

        def run() -> Response:
            require_collection(request, collection_id)
            batch = body.get("features") if body.get("type") == "FeatureCollection" else [body]
            if not isinstance(batch, list):
                raise InvalidItemError("a FeatureCollection needs a 'features' list")
            for it in batch:
                _check_collection(it, collection_id)
                try:
                    catalog.get_item(collection_id, str(it.get("id")))
                except NotFoundError:
                    continue
                return _error(409, "Conflict", f"item {it.get('id')!r} exists; use PUT to replace")
            for it in batch:
                store(internal(request, {**_strip_links(it), "collection": collection_id}))
            if len(batch) == 1:
                stored = catalog.get_item(collection_id, str(batch[0]["id"]))
                return _json(out_item(base(request), stored), 201, GEOJSON)
            return _json({"created": len(batch)}, 201)

        return _guard(run)

    @router.put("/collections/{collection_id}/items/{item_id}")
    def update_item(
        request: Request,
        collection_id: str,
        item_id: str,
        body: dict[str, Any] = Body(...),
        authorization: str | None = Header(default=None),
    ) -> Response:
        """Replace an item (404 if missing; 409 if a newer federated version is held)."""
        authorise(authorization)

        def run() -> Response:
            _check_collection(body, collection_id)
            if body.get("id", item_id) != item_id:
                raise InvalidItemError(
                    f"body id {body.get('id')!r} differs from the path id {item_id!r}"
                )
            catalog.get_item(collection_id, item_id)
            doc = internal(
                request, {**_strip_links(body), "id": item_id, "collection": collection_id}
            )
            if not store(doc):
                return _error(409, "Conflict", f"a newer version of {item_id!r} is stored")
            stored = catalog.get_item(collection_id, item_id)
            return _json(out_item(base(request), stored), media_type=GEOJSON)

        return _guard(run)

    @router.delete("/collections/{collection_id}/items/{item_id}")
    def delete_item(
        collection_id: str,
        item_id: str,
        authorization: str | None = Header(default=None),
    ) -> Response:
        """Delete an item."""
        authorise(authorization)

        def run() -> Response:
            if not remove(collection_id, item_id):
                return _error(404, "NotFound", f"item {item_id!r} not found in {collection_id!r}")
            return Response(status_code=204)

        return _guard(run)

    return router


def _strip_links(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop links the API regenerates (self, root, parent, collection, items)."""
    out = dict(doc)
    out["links"] = [
        lk
        for lk in doc.get("links", []) or []
        if isinstance(lk, dict)
        and lk.get("rel") not in {"self", "root", "parent", "collection", "items", "next"}
    ]
    return out


def _check_collection(item: dict[str, Any], collection_id: str) -> None:
    if not isinstance(item, dict):
        raise InvalidItemError(f"an item must be a JSON object, got {type(item).__name__}")
    given = item.get("collection")
    if given is not None and given != collection_id:
        raise InvalidItemError(
            f"item {item.get('id')!r} names collection {given!r} but was sent to {collection_id!r}"
        )
