"""openEO batch jobs: ``/jobs``, ``/jobs/{id}``, ``/jobs/{id}/results``, ``/jobs/{id}/logs``.

The edge owns job definitions (create, patch, delete, cancel marks); starting a job
publishes an :class:`OpenEOJobRequested` on ``openeo.jobs`` for the job agent
(:mod:`gravitas.agents.openeo_jobs`), which owns the run states. A job's status is
``created`` until started, ``queued`` until the agent takes its run, then the agent's.
Results are a STAC item whose asset links are signed download URLs of this node
(HMAC of the node token, valid :data:`LINK_TTL_S`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gravitas.schemas.events import OpenEOJobRequested
from gravitas.streams.openeo.context import OpenEOContext, base_url
from gravitas.streams.openeo.errors import (
    JobLockedError,
    JobNotFinishedError,
    JobNotFoundError,
    NotFoundError,
    OpenEOError,
    ServiceUnavailableError,
)
from gravitas.streams.openeo.federation import place
from gravitas.streams.openeo.graphs import graph_of, load_collections, parse_body

JOB_ID_RE = re.compile(r"^j-[0-9a-f]{16}$")
LINK_TTL_S = 7 * 24 * 3600
ACTIVE = ("queued", "running")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def sign_link(token: str, job_id: str, filename: str, expires: int) -> str:
    return hmac.new(
        token.encode(), f"{job_id}/{filename}/{expires}".encode(), hashlib.sha256
    ).hexdigest()


def jobs_router(ctx: OpenEOContext) -> APIRouter:
    router = APIRouter()
    store = ctx.store

    def job_of(user: str, job_id: str) -> tuple[dict[str, Any], float, float]:
        if not JOB_ID_RE.match(job_id):
            raise JobNotFoundError(f"job id {job_id[:100]!r} is not a job id of this node")
        found = store.get_job(job_id)
        if found is None or found[0] != user:
            raise JobNotFoundError(f"job {job_id!r} does not exist")
        return found[1], found[2], found[3]

    def status_of(job_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        run = doc.get("run_id")
        if run is None:
            return {"status": "created", "progress": 0.0}
        state = store.status(job_id)
        if state is None or state["run"] != run:
            return {"status": "queued", "progress": 0.0}
        return state

    def describe(
        job_id: str, doc: dict[str, Any], created: float, updated: float
    ) -> dict[str, Any]:
        state = status_of(job_id, doc)
        out = {
            "id": job_id,
            "title": doc.get("title"),
            "description": doc.get("description"),
            "process": doc["process"],
            "status": state["status"],
            "progress": round(float(state["progress"]) * 100, 1),
            "created": _iso(created),
            "updated": _iso(max(updated, float(state.get("updated") or 0))),
        }
        return out

    @router.post("/jobs")
    async def create(request: Request) -> Response:
        user = await ctx.user(request)
        doc = parse_body(await request.body())
        graph = graph_of(doc)
        for key in ("title", "description"):
            if doc.get(key) is not None and not isinstance(doc[key], str):
                raise OpenEOError(f"{key} must be a string", code="BadRequest", status=400)
        job_id = f"j-{uuid.uuid4().hex[:16]}"
        store.create_job(
            job_id,
            user,
            {
                "title": doc.get("title"),
                "description": doc.get("description"),
                "process": {"process_graph": graph},
            },
        )
        url = f"{base_url(request)}/jobs/{job_id}"
        return Response(status_code=201, headers={"Location": url, "OpenEO-Identifier": job_id})

    @router.get("/jobs")
    async def list_jobs(request: Request) -> Response:
        user = await ctx.user(request)
        jobs = []
        for job_id, doc, created, updated in store.list_jobs(user):
            d = describe(job_id, doc, created, updated)
            d.pop("process")
            jobs.append(d)
        return _json({"jobs": jobs, "links": []})

    @router.get("/jobs/{job_id}")
    async def get_job(job_id: str, request: Request) -> Response:
        user = await ctx.user(request)
        doc, created, updated = job_of(user, job_id)
        return _json(describe(job_id, doc, created, updated))

    @router.patch("/jobs/{job_id}")
    async def patch_job(job_id: str, request: Request) -> Response:
        user = await ctx.user(request)
        doc, _, _ = job_of(user, job_id)
        if status_of(job_id, doc)["status"] in ACTIVE:
            raise JobLockedError(f"job {job_id!r} is queued or running; cancel it first")
        body = parse_body(await request.body())
        if "process" in body:
            doc["process"] = {"process_graph": graph_of(body)}
        for key in ("title", "description"):
            if key in body:
                if body[key] is not None and not isinstance(body[key], str):
                    raise OpenEOError(f"{key} must be a string", code="BadRequest", status=400)
                doc[key] = body[key]
        store.update_job(job_id, doc)
        return Response(status_code=204)

    @router.delete("/jobs/{job_id}")
    async def delete_job(job_id: str, request: Request) -> Response:
        user = await ctx.user(request)
        job_of(user, job_id)
        store.delete_job(job_id)
        return Response(status_code=204)

    @router.post("/jobs/{job_id}/results")
    async def start(job_id: str, request: Request) -> Response:
        user = await ctx.user(request)
        doc, _, _ = job_of(user, job_id)
        if status_of(job_id, doc)["status"] in ACTIVE:
            return Response(status_code=202)
        if ctx.publish is None:
            raise ServiceUnavailableError("this node runs no batch-job agent")
        from gravitas.streams.openeo.app import resolved_graph

        graph = resolved_graph(ctx, user, doc["process"]["process_graph"])
        ids = [str(a.get("id", "")) for a in load_collections(graph)]
        placement = await ctx.services.run_compute(place, ctx.services, ids)
        if not placement.local:
            raise OpenEOError(
                f"the job's collections are on node {placement.node_id!r}: batch jobs run "
                "where their data is; create the job on that node (synchronous /result is "
                "forwarded)",
                code="FeatureUnsupported",
                status=501,
            )
        run_id = f"r-{uuid.uuid4().hex[:16]}"
        doc["run_id"] = run_id
        doc.pop("cancel_run", None)
        store.update_job(job_id, doc)
        event = OpenEOJobRequested(job_id=job_id, run_id=run_id, user=user, process_graph=graph)
        await ctx.publish("openeo.jobs", event)
        return Response(status_code=202)

    @router.delete("/jobs/{job_id}/results")
    async def cancel(job_id: str, request: Request) -> Response:
        user = await ctx.user(request)
        doc, _, _ = job_of(user, job_id)
        if doc.get("run_id"):
            doc["cancel_run"] = doc["run_id"]
            store.update_job(job_id, doc)
        return Response(status_code=204)

    @router.get("/jobs/{job_id}/results")
    async def results(job_id: str, request: Request) -> Response:
        user = await ctx.user(request)
        doc, created, _ = job_of(user, job_id)
        state = status_of(job_id, doc)
        if state["status"] != "finished" or not state.get("result"):
            raise JobNotFinishedError(f"job {job_id!r} is {state['status']}, not finished")
        meta = state["result"]
        expires = int(time.time()) + LINK_TTL_S
        sig = sign_link(ctx.token, job_id, meta["filename"], expires)
        href = (
            f"{base_url(request)}/jobs/{job_id}/results/assets/{meta['filename']}"
            f"?expires={expires}&sig={sig}"
        )
        item = {
            "stac_version": "1.0.0",
            "stac_extensions": [],
            "type": "Feature",
            "id": job_id,
            "bbox": None,
            "geometry": None,
            "properties": {
                "datetime": _iso(float(state["updated"])),
                "title": doc.get("title"),
                "created": _iso(created),
                "updated": _iso(float(state["updated"])),
            },
            "assets": {
                meta["filename"]: {
                    "href": href,
                    "type": meta["media_type"],
                    "roles": ["data"],
                    "file:size": meta["size"],
                    "expires": _iso(expires),
                }
            },
            "links": [{"rel": "self", "href": f"{base_url(request)}/jobs/{job_id}/results"}],
        }
        return _json(item)

    @router.get("/jobs/{job_id}/results/assets/{filename}")
    async def asset(
        job_id: str,
        filename: str,
        expires: int = Query(0),
        sig: str = Query("", max_length=128),
    ) -> Response:
        if not JOB_ID_RE.match(job_id) or expires < time.time():
            raise NotFoundError("this download link is invalid or expired; GET the results again")
        if not hmac.compare_digest(sig, sign_link(ctx.token, job_id, filename, expires)):
            raise NotFoundError("this download link is invalid or expired; GET the results again")
        state = store.status(job_id)
        if state is None or not state.get("result") or state["result"]["filename"] != filename:
            raise NotFoundError(f"job {job_id!r} has no result file {filename[:100]!r}")
        meta = state["result"]
        if meta.get("tree"):  # a Zarr store: one ZIP of its objects
            from gravitas.agents.graphs.publish import zip_prefix

            obj = ctx.services.object_store
            data = await ctx.services.run_compute(zip_prefix, obj, meta["key"])
        else:
            data = await ctx.services.run_compute(ctx.services.object_store.get_bytes, meta["key"])
        return Response(
            data,
            media_type=meta["media_type"],
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @router.get("/jobs/{job_id}/logs")
    async def logs(
        job_id: str,
        request: Request,
        offset: str | None = Query(None, max_length=20),
        limit: int = Query(1000, ge=1, le=10000),
    ) -> Response:
        user = await ctx.user(request)
        job_of(user, job_id)
        after = int(offset) if offset and offset.isdigit() else -1
        return _json({"logs": store.logs(job_id, after, limit), "links": []})

    return router
