"""The openEO sub-application mounted at ``/openeo/1.2`` on a node's edge.

Public: capabilities, conformance, file formats, processes, collections. Everything
else needs a bearer token (:mod:`gravitas.streams.openeo.auth`) or a peer's signature.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gravitas.schemas.errors import GravitasError
from gravitas.streams.openeo import engine
from gravitas.streams.openeo.auth import basic_login
from gravitas.streams.openeo.capabilities import capabilities, conformance, well_known
from gravitas.streams.openeo.collections import (
    check_collection_id,
    collection_doc,
    local_collections,
)
from gravitas.streams.openeo.context import OpenEOContext, base_url
from gravitas.streams.openeo.errors import (
    CollectionNotFoundError,
    OpenEOError,
    ProcessGraphInvalidError,
    ProcessGraphMissingError,
    ProcessGraphNotFoundError,
    install_handlers,
)
from gravitas.streams.openeo.federation import forward_result, place
from gravitas.streams.openeo.graphs import (
    check_graph,
    graph_of,
    load_collections,
    parse_body,
    resolve_udps,
)
from gravitas.streams.openeo.peersign import signed_error, signed_response
from gravitas.streams.openeo.remote import peer_collection, remote_collections

log = logging.getLogger("gravitas.openeo")
UDP_ID_RE = re.compile(r"^\w{1,100}$")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def resolved_graph(ctx: OpenEOContext, user: str, graph: dict[str, Any]) -> dict[str, Any]:
    """``graph`` with the user's processes inlined."""

    def lookup(pid: str) -> dict[str, Any] | None:
        found = ctx.store.get_udp(user, pid)
        return found[1] if found else None

    return resolve_udps(graph, lookup, engine.process_ids())


async def run_graph(ctx: OpenEOContext, graph: dict[str, Any]) -> tuple[bytes, str, dict[str, str]]:
    """Run a (resolved) graph here or on the node holding its data."""
    services = ctx.services
    ids = [str(a.get("id", "")) for a in load_collections(graph)]
    for cid in ids:
        check_collection_id(cid)
    placement = await services.run_compute(place, services, ids)
    if not placement.local:
        body = orjson.dumps({"process": {"process_graph": graph}})
        return await services.run_compute(forward_result, services, placement.node_id, body)
    result = await services.run_compute(engine.execute, graph, services)
    name, media = engine.packed(result)
    try:  # a Zarr result is a directory on disk: it travels as one ZIP
        data = await services.run_compute(engine.read_result, result)
    finally:
        engine.close_result(result)
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return data, media, headers


def core_router(ctx: OpenEOContext) -> APIRouter:
    router = APIRouter()
    services = ctx.services
    node_id = services.settings.node_id

    @router.get("/")
    async def root(request: Request) -> Response:
        return _json(capabilities(base_url(request), node_id))

    @router.get("/conformance")
    async def conf() -> Response:
        return _json(conformance())

    @router.get("/file_formats")
    async def file_formats() -> Response:
        return _json(engine.file_formats())

    @router.get("/udf_runtimes")
    async def udf_runtimes() -> Response:
        return _json({})  # no UDF runtimes: user code never runs on a node

    @router.get("/service_types")
    async def service_types() -> Response:
        return _json({})  # no secondary web services

    @router.get("/processes")
    async def processes() -> Response:
        return _json({"processes": engine.claimed(), "links": []})

    @router.get("/collections")
    async def collections(request: Request) -> Response:
        base = base_url(request)

        def build() -> list[dict[str, Any]]:
            local = local_collections(services.layers)
            docs = [
                collection_doc(c, services.block_store, base, node_id, full=False)
                for c in local.values()
            ]
            return docs + remote_collections(services, base, set(local))

        docs = await services.run_compute(build)
        return _json(
            {"collections": docs, "links": [{"rel": "self", "href": f"{base}/collections"}]}
        )

    @router.get("/collections/{collection_id}")
    async def collection(collection_id: str, request: Request) -> Response:
        check_collection_id(collection_id)
        base = base_url(request)

        def build() -> dict[str, Any] | None:
            local = local_collections(services.layers)
            if collection_id in local:
                return collection_doc(
                    local[collection_id], services.block_store, base, node_id, full=True
                )
            for doc in remote_collections(services, base, set(local)):
                if doc["id"] == collection_id:
                    # the owner's own description (bands, common names), else the catalog's
                    for node in doc["federation:backends"]:
                        if (full := peer_collection(services, node, collection_id)) is not None:
                            links = [{"rel": "self", "href": f"{base}/collections/{collection_id}"}]
                            return {**full, "links": links, "federation:backends": [node]}
                    return doc
            return None

        nonce = request.headers.get("x-gravitas-signature")
        if nonce is not None:  # a peer asks for its own description: signed, errors too
            try:
                await ctx.user(request)  # only a configured peer's signed request
                doc = await services.run_compute(build)
                if doc is None:
                    raise CollectionNotFoundError(f"collection {collection_id!r} does not exist")
            except (OpenEOError, GravitasError) as exc:
                return signed_error(services.identity, nonce[:200], exc)
            return signed_response(
                services.identity, nonce[:200], 200, orjson.dumps(doc), "application/json"
            )
        doc = await services.run_compute(build)
        if doc is None:
            raise CollectionNotFoundError(
                f"collection {collection_id!r} does not exist; GET /collections lists them"
            )
        return _json(doc)

    @router.get("/credentials/basic")
    async def credentials_basic(request: Request) -> Response:
        user, token = basic_login(ctx.token, request.headers.get("authorization"))
        return _json({"access_token": token, "user_id": user})

    @router.get("/me")
    async def me(request: Request) -> Response:
        user = await ctx.user(request)
        return _json({"user_id": user, "name": user, "links": []})

    @router.post("/validation")
    async def validation(request: Request) -> Response:
        doc = parse_body(await request.body())
        try:
            graph = graph_of(doc)
        except (ProcessGraphInvalidError, ProcessGraphMissingError) as exc:
            return _json({"errors": [{"code": exc.code, "message": exc.message}]})
        return _json({"errors": await services.run_compute(engine.validate, graph)})

    async def compute(request: Request) -> tuple[bytes, str, dict[str, str]]:
        user = await ctx.user(request)
        graph = graph_of(parse_body(await request.body()))
        graph = resolved_graph(ctx, user, graph)
        data, media_type, headers = await run_graph(ctx, graph)
        log.info("openEO /result for %s: %d bytes of %s", user, len(data), media_type)
        return data, media_type, headers

    @router.post("/result")
    async def result(request: Request) -> Response:
        nonce = request.headers.get("x-gravitas-signature")
        if nonce is None:
            data, media_type, headers = await compute(request)
            return Response(data, media_type=media_type, headers=headers)
        # a peer's forwarded graph: every answer (errors too) signed for its request
        identity, nonce = services.identity, nonce[:200]
        try:
            data, media_type, headers = await compute(request)
        except Exception as exc:
            if not isinstance(exc, OpenEOError | GravitasError):
                log.exception("forwarded /result failed")
            return signed_error(identity, nonce, exc)
        return signed_response(identity, nonce, 200, data, media_type, headers)

    return router


def udp_router(ctx: OpenEOContext) -> APIRouter:
    router = APIRouter()

    def check_id(udp_id: str) -> str:
        if not UDP_ID_RE.match(udp_id):
            raise ProcessGraphNotFoundError(
                f"process graph id {udp_id[:100]!r} is invalid: use 1-100 letters, digits, '_'"
            )
        return udp_id

    @router.get("/process_graphs")
    async def list_udps(request: Request) -> Response:
        user = await ctx.user(request)
        rows = ctx.store.list_udps(user)
        out = [
            {k: v for k, v in doc.items() if k != "process_graph"} | {"id": udp_id}
            for udp_id, _version, doc in rows
        ]
        return _json({"processes": out, "links": []})

    @router.get("/process_graphs/{udp_id}")
    async def get_udp(udp_id: str, request: Request) -> Response:
        user = await ctx.user(request)
        found = ctx.store.get_udp(user, check_id(udp_id))
        if found is None:
            raise ProcessGraphNotFoundError(f"process graph {udp_id!r} does not exist")
        version, doc = found
        return _json({**doc, "id": udp_id}, headers={"ETag": f'"{version}"'})

    @router.put("/process_graphs/{udp_id}")
    async def put_udp(udp_id: str, request: Request) -> Response:
        user = await ctx.user(request)
        check_id(udp_id)
        doc = parse_body(await request.body())
        if "process_graph" not in doc:
            raise ProcessGraphInvalidError("a user-defined process needs a process_graph")
        check_graph(doc["process_graph"])
        if doc.get("id") not in (None, udp_id):
            raise ProcessGraphInvalidError(
                f"the body's id {str(doc['id'])[:100]!r} differs from the path's {udp_id!r}"
            )
        if udp_id in engine.process_ids():
            raise ProcessGraphInvalidError(
                f"{udp_id!r} is a predefined process of this node; choose another id"
            )
        params = doc.get("parameters")
        if params is not None and not (
            isinstance(params, list)
            and all(isinstance(p, dict) and isinstance(p.get("name"), str) for p in params)
        ):
            raise ProcessGraphInvalidError("parameters must be a list of objects with a name")
        doc["id"] = udp_id
        version = ctx.store.put_udp(user, udp_id, doc)
        return Response(status_code=200, headers={"ETag": f'"{version}"'})

    @router.delete("/process_graphs/{udp_id}")
    async def delete_udp(udp_id: str, request: Request) -> Response:
        user = await ctx.user(request)
        if ctx.store.get_udp(user, check_id(udp_id)) is None:
            raise ProcessGraphNotFoundError(f"process graph {udp_id!r} does not exist")
        ctx.store.put_udp(user, udp_id, None)
        return Response(status_code=204)

    return router


def openeo_app(ctx: OpenEOContext, extra: list[APIRouter] | None = None) -> FastAPI:
    """The openEO API as an app to mount at ``/openeo/1.2``."""
    app = FastAPI(title="gravitas openEO API", openapi_url=None, docs_url=None, redoc_url=None)
    install_handlers(app)
    app.include_router(core_router(ctx))
    app.include_router(udp_router(ctx))
    for router in extra or []:
        app.include_router(router)
    return app


class _MergeSlashes:
    """``/openeo/1.2//jobs/x`` is ``/openeo/1.2/jobs/x`` (clients that join a base URL
    ending in ``/`` with a path starting with ``/``, as openeo-test-suite does), like a
    web server's merged slashes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "//" in scope.get("path", ""):
            scope = dict(scope)
            scope["path"] = re.sub("/{2,}", "/", scope["path"])
        await self.app(scope, receive, send)


def mount_openeo(app: FastAPI, ctx: OpenEOContext, extra: list[APIRouter] | None = None) -> None:
    """Mount the API on the edge app, with ``/.well-known/openeo``."""

    @app.get("/.well-known/openeo")
    async def _well_known(request: Request) -> Response:
        return _json(well_known(str(request.base_url).rstrip("/")))

    sub = openeo_app(ctx, extra)
    app.mount("/openeo/1.2", _MergeSlashes(sub))

    # /openeo/<anything else> answers an openEO 404 too
    @app.api_route("/openeo/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def _other_version(rest: str) -> Response:
        from gravitas.streams.openeo.errors import error_body

        return error_body(
            "NotFound", f"no openEO API at /openeo/{rest[:100]}: this node serves /openeo/1.2/", 404
        )
