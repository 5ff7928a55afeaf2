"""openEO batch jobs: ``/jobs``, ``/jobs/{id}``, ``/jobs/{id}/results``, ``/jobs/{id}/logs``.

The edge owns job definitions (create, patch, delete, cancel marks); starting a job
publishes an :class:`OpenEOJobRequested` on ``openeo.jobs`` for the job agent
(:mod:`gravitas.agents.openeo_jobs`), which owns the run states. A job's status is
``created`` until started, ``queued`` until the agent takes its run, then the agent's.
Results are a STAC item whose asset links are signed download URLs of this node
(HMAC of the node token, valid :data:`LINK_TTL_S`).

A job whose data is on another node is created there and proxied
(:mod:`gravitas.streams.openeo.jobs_peer`): its id here is ``<node>-<that node's id>``.
A create with an ``Idempotency-Key`` header returns the job that key created before (same
body) instead of a second one, here and on the data's node.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gravitas.streams.openeo.auth import USER_RE
from gravitas.streams.openeo.context import OpenEOContext, base_url
from gravitas.streams.openeo.errors import (
    CollectionNotFoundError,
    IdempotencyKeyReusedError,
    NotFoundError,
    OpenEOError,
    ServiceUnavailableError,
)
from gravitas.streams.openeo.federation import place
from gravitas.streams.openeo.graphs import graph_of, load_collections, parse_body
from gravitas.streams.openeo.jobs_local import (
    JOB_ID_RE,
    LocalJobs,
    check_idempotency_key,
    check_meta,
    iso,
)
from gravitas.streams.openeo.jobs_peer import (
    LIST_TIMEOUT_S,
    FedJob,
    PeerAnswerRefusedError,
    PeerJobs,
    fed_job,
    log,
)

LINK_TTL_S = 7 * 24 * 3600
CREATE_ATTEMPTS = 2
"""Sends of one job create to its data's node (same idempotency key) before giving up."""
FILENAME_RE = re.compile(r"^[\w.\-]{1,200}$")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def sign_link(token: str, job_id: str, filename: str, expires: int) -> str:
    return hmac.new(
        token.encode(), f"{job_id}/{filename}/{expires}".encode(), hashlib.sha256
    ).hexdigest()


def results_item(
    base: str, job_id: str, meta: dict[str, Any], href: str, expires: int
) -> dict[str, Any]:
    """The STAC item of a finished job's results (``meta``: see ``LocalJobs.results``)."""
    return {
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "type": "Feature",
        "id": job_id,
        "bbox": None,
        "geometry": None,
        "properties": {
            "datetime": iso(float(meta["updated"])),
            "title": meta.get("title"),
            "created": iso(float(meta["created"])),
            "updated": iso(float(meta["updated"])),
        },
        "assets": {
            meta["filename"]: {
                "href": href,
                "type": meta["media_type"],
                "roles": ["data"],
                "file:size": meta["size"],
                "expires": iso(expires),
            }
        },
        "links": [{"rel": "self", "href": f"{base}/jobs/{job_id}/results"}],
    }


def _peer_meta(node: str, meta: Any) -> dict[str, Any]:
    """A peer's results metadata, checked before any of it is used."""
    ok = (
        isinstance(meta, dict)
        and isinstance(meta.get("filename"), str)
        and FILENAME_RE.match(meta["filename"])
        and isinstance(meta.get("media_type"), str)
        and len(meta["media_type"]) < 200
        and isinstance(meta.get("size"), int)
        and all(isinstance(meta.get(k), int | float) for k in ("created", "updated"))
        and (meta.get("title") is None or isinstance(meta["title"], str))
    )
    if not ok:
        raise PeerAnswerRefusedError(f"node {node!r} answered results with invalid metadata")
    return dict(meta)


def jobs_router(ctx: OpenEOContext) -> APIRouter:
    router = APIRouter()
    local = LocalJobs(ctx)
    peers = PeerJobs(ctx)
    services = ctx.services

    async def remote_node_for(user: str, graph: dict[str, Any]) -> str | None:
        """The other node a new job's graph runs on (None: here). A graph spanning nodes
        is refused naming them; an unknown collection is left to the start (as before)."""
        from gravitas.streams.openeo.app import resolved_graph

        try:
            resolved = resolved_graph(ctx, user, graph)
        except OpenEOError:
            return None  # a missing UDP etc. fails at start with its own error
        ids = [str(a.get("id", "")) for a in load_collections(resolved)]
        try:
            placement = await services.run_compute(place, services, ids)
        except CollectionNotFoundError:
            return None
        return None if placement.local else placement.node_id

    async def call(fj: FedJob, op: str, user: str, **fields: Any) -> Any:
        return await services.run_compute(peers.json, fj.node, op, user, job=fj.job, **fields)

    @router.post("/jobs")
    async def create(request: Request) -> Response:
        from gravitas.streams.openeo.app import resolved_graph

        user = await ctx.user(request)
        doc = parse_body(await request.body())
        graph = graph_of(doc)
        check_meta(doc)
        header = request.headers.get("idempotency-key")
        client_key = None  # the client's key, as this node stores and sends it
        if header is not None:
            digest = hashlib.sha256(check_idempotency_key(header).encode()).hexdigest()
            client_key = f"c-{digest[:40]}"
        node = await remote_node_for(user, graph)
        if node is None:
            job_id = local.create(user, doc, graph, client_key, header)
        else:
            body = {
                "title": doc.get("title"),
                "description": doc.get("description"),
                "process": {"process_graph": resolved_graph(ctx, user, graph)},
            }
            # the same key on every attempt: a create whose answer was lost is not repeated
            key = client_key or f"b-{uuid.uuid4().hex}"
            for attempt in range(CREATE_ATTEMPTS):
                try:
                    out = await services.run_compute(
                        peers.json, node, "create", user, body=body, idempotency_key=key
                    )
                    break
                except ServiceUnavailableError:
                    if attempt == CREATE_ATTEMPTS - 1:
                        raise
                    log.warning("openEO job create on node %s (key %s) sent again", node, key)
                except OpenEOError as exc:
                    if exc.code != IdempotencyKeyReusedError.code:
                        raise
                    raise IdempotencyKeyReusedError(  # named as the client sent it
                        f"idempotency key {header or key!r} was already used to create a job "
                        "with another body; send a new key for a new job"
                    ) from None
            remote = out.get("job_id") if isinstance(out, dict) else None
            if not isinstance(remote, str) or not JOB_ID_RE.match(remote):
                raise PeerAnswerRefusedError(f"node {node!r} answered create without a job id")
            job_id = FedJob(node, remote).id
            log.info("openEO job %s of %s created on node %s (its data is there)", job_id,
                     user, node)  # fmt: skip
        url = f"{base_url(request)}/jobs/{job_id}"
        return Response(status_code=201, headers={"Location": url, "OpenEO-Identifier": job_id})

    @router.get("/jobs")
    async def list_jobs(request: Request) -> Response:
        user = await ctx.user(request)
        jobs = local.list_jobs(user)
        nodes = sorted(services.settings.peers)

        async def of(node: str) -> list[dict[str, Any]] | None:
            try:
                out = await services.run_compute(
                    peers.json, node, "list", user, timeout_s=LIST_TIMEOUT_S
                )
            except OpenEOError as exc:
                log.warning("openEO jobs of node %s not listed: %s", node, exc.message)
                return None
            found = out.get("jobs") if isinstance(out, dict) else None
            if not isinstance(found, list):
                return None
            rows = []
            for job in found:
                if isinstance(job, dict) and JOB_ID_RE.match(str(job.get("id", ""))):
                    rows.append({**job, "id": FedJob(node, str(job["id"])).id})
            return rows

        answers = await asyncio.gather(*(of(n) for n in nodes))
        missing = [n for n, rows in zip(nodes, answers, strict=True) if rows is None]
        for rows in answers:
            jobs.extend(rows or [])
        body: dict[str, Any] = {"jobs": jobs, "links": []}
        if missing:
            body["federation:missing"] = missing
        return _json(body)

    @router.get("/jobs/{job_id}")
    async def get_job(job_id: str, request: Request) -> Response:
        user = await ctx.user(request)
        if (fj := fed_job(ctx, job_id)) is not None:
            out = await call(fj, "describe", user)
            if not isinstance(out, dict):
                raise PeerAnswerRefusedError(f"node {fj.node!r} answered describe with no job")
            return _json({**out, "id": fj.id})
        return _json(local.describe(user, job_id))

    @router.patch("/jobs/{job_id}")
    async def patch_job(job_id: str, request: Request) -> Response:
        from gravitas.streams.openeo.app import resolved_graph

        user = await ctx.user(request)
        fj = fed_job(ctx, job_id)
        body = parse_body(await request.body())
        if fj is None:
            local.patch(user, job_id, body)
            return Response(status_code=204)
        check_meta(body)
        if "process" in body:
            graph = graph_of(body)
            if await remote_node_for(user, graph) != fj.node:
                raise OpenEOError(
                    f"job {job_id!r} runs on node {fj.node!r}; the new graph's collections "
                    "are not all on that node: create a new job for it",
                    code="ProcessGraphInvalid",
                    status=400,
                )
            body = {**body, "process": {"process_graph": resolved_graph(ctx, user, graph)}}
        await call(fj, "patch", user, body=body)
        return Response(status_code=204)

    @router.delete("/jobs/{job_id}")
    async def delete_job(job_id: str, request: Request) -> Response:
        user = await ctx.user(request)
        if (fj := fed_job(ctx, job_id)) is not None:
            await call(fj, "delete", user)
        else:
            local.delete(user, job_id)
        return Response(status_code=204)

    @router.post("/jobs/{job_id}/results")
    async def start(job_id: str, request: Request) -> Response:
        user = await ctx.user(request)
        if (fj := fed_job(ctx, job_id)) is not None:
            await call(fj, "start", user)
            log.info("openEO job %s of %s started on node %s", job_id, user, fj.node)
        else:
            await local.start(user, job_id)
        return Response(status_code=202)

    @router.delete("/jobs/{job_id}/results")
    async def cancel(job_id: str, request: Request) -> Response:
        user = await ctx.user(request)
        if (fj := fed_job(ctx, job_id)) is not None:
            await call(fj, "cancel", user)
        else:
            local.cancel(user, job_id)
        return Response(status_code=204)

    @router.get("/jobs/{job_id}/results")
    async def results(job_id: str, request: Request) -> Response:
        user = await ctx.user(request)
        expires = int(time.time()) + LINK_TTL_S
        base = base_url(request)
        if (fj := fed_job(ctx, job_id)) is not None:
            meta = _peer_meta(fj.node, await call(fj, "results", user))
            # the link names the user: the owner node checks the job is theirs
            sig = sign_link(ctx.token, f"{job_id}/{user}", meta["filename"], expires)
            query = f"expires={expires}&sig={sig}&u={user}"
        else:
            meta = local.results(user, job_id)
            sig = sign_link(ctx.token, job_id, meta["filename"], expires)
            query = f"expires={expires}&sig={sig}"
        href = f"{base}/jobs/{job_id}/results/assets/{meta['filename']}?{query}"
        return _json(results_item(base, job_id, meta, href, expires))

    @router.get("/jobs/{job_id}/results/assets/{filename}")
    async def asset(
        job_id: str,
        filename: str,
        expires: int = Query(0),
        sig: str = Query("", max_length=128),
        u: str = Query("", max_length=64),
    ) -> Response:
        invalid = NotFoundError("this download link is invalid or expired; GET the results again")
        if expires < time.time():
            raise invalid
        if JOB_ID_RE.match(job_id):
            if not hmac.compare_digest(sig, sign_link(ctx.token, job_id, filename, expires)):
                raise invalid
            data, media = await local.asset(job_id, filename)
        else:
            fj = fed_job(ctx, job_id)
            signed = sign_link(ctx.token, f"{job_id}/{u}", filename, expires)
            if fj is None or not USER_RE.match(u) or not hmac.compare_digest(sig, signed):
                raise invalid
            data, media = await services.run_compute(
                peers.call, fj.node, "asset", u, job=fj.job, filename=filename
            )
            log.info("openEO job %s result from node %s: %d bytes", job_id, fj.node, len(data))
        return Response(
            data,
            media_type=media,
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
        after = int(offset) if offset and offset.isdigit() else -1
        if (fj := fed_job(ctx, job_id)) is not None:
            out = await call(fj, "logs", user, after=after, limit=limit)
            entries = out.get("logs") if isinstance(out, dict) else None
            if not isinstance(entries, list):
                raise PeerAnswerRefusedError(f"node {fj.node!r} answered logs with no list")
            return _json({"logs": entries, "links": []})
        return _json({"logs": local.logs(user, job_id, after, limit), "links": []})

    return router
