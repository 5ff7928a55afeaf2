"""The batch-job operations on this node's own jobs, for one user.

The routes of :mod:`gravitas.streams.openeo.jobs` call them for the bearer token's
user; the peer endpoint of :mod:`gravitas.streams.openeo.jobs_peer` calls them for a
peer's user (``<node>~<user>``: ``~`` is in no local user name, so a peer's users never
meet this node's). The edge owns job definitions (create, patch, delete, cancel marks);
starting publishes an :class:`OpenEOJobRequested` for the job agent, which owns run
states.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from gravitas.schemas.events import OpenEOJobRequested
from gravitas.streams.openeo.context import OpenEOContext
from gravitas.streams.openeo.errors import (
    BadRequestError,
    IdempotencyKeyReusedError,
    JobLockedError,
    JobNotFinishedError,
    JobNotFoundError,
    NotFoundError,
    OpenEOError,
    ServiceUnavailableError,
)
from gravitas.streams.openeo.federation import place
from gravitas.streams.openeo.graphs import graph_of, load_collections

JOB_ID_RE = re.compile(r"^j-[0-9a-f]{16}$")
IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
ACTIVE = ("queued", "running")


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_job_id() -> str:
    return f"j-{uuid.uuid4().hex[:16]}"


def check_idempotency_key(key: object) -> str:
    """An idempotency key as sent (a client's ``Idempotency-Key`` header or a peer's), or
    ``BadRequest`` naming it."""
    if not isinstance(key, str) or not IDEMPOTENCY_KEY_RE.match(key):
        raise BadRequestError(
            f"idempotency key {str(key)[:140]!r} is invalid: use 1-128 letters, digits, "
            "'_', '.', ':' or '-'"
        )
    return key


def check_meta(doc: dict[str, Any]) -> None:
    for key in ("title", "description"):
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise OpenEOError(f"{key} must be a string", code="BadRequest", status=400)


@dataclass
class LocalJobs:
    """Batch jobs stored on this node."""

    ctx: OpenEOContext

    def job_of(self, user: str, job_id: str) -> tuple[dict[str, Any], float, float]:
        if not JOB_ID_RE.match(job_id):
            raise JobNotFoundError(f"job id {job_id[:100]!r} is not a job id of this node")
        found = self.ctx.store.get_job(job_id)
        if found is None or found[0] != user:
            raise JobNotFoundError(f"job {job_id!r} does not exist")
        return found[1], found[2], found[3]

    def status_of(self, job_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        run = doc.get("run_id")
        if run is None:
            return {"status": "created", "progress": 0.0}
        state = self.ctx.store.status(job_id)
        if state is None or state["run"] != run:
            return {"status": "queued", "progress": 0.0}
        return state

    def _describe(
        self, job_id: str, doc: dict[str, Any], created: float, updated: float
    ) -> dict[str, Any]:
        state = self.status_of(job_id, doc)
        return {
            "id": job_id,
            "title": doc.get("title"),
            "description": doc.get("description"),
            "process": doc["process"],
            "status": state["status"],
            "progress": round(float(state["progress"]) * 100, 1),
            "created": iso(created),
            "updated": iso(max(updated, float(state.get("updated") or 0))),
        }

    # ------------------------------------------------------------------ operations
    def create(
        self,
        user: str,
        doc: dict[str, Any],
        graph: dict[str, Any],
        key: str | None = None,
        key_name: str | None = None,
    ) -> str:
        """A new job; with an idempotency ``key`` the job that key created before when
        the body is the same (``IdempotencyKeyReused`` naming the key, as ``key_name``
        when given, when it is not)."""
        check_meta(doc)
        job_id = new_job_id()
        stored = {
            "title": doc.get("title"),
            "description": doc.get("description"),
            "process": {"process_graph": graph},
        }
        if key is None:
            self.ctx.store.create_job(job_id, user, stored)
            return job_id
        digest = hashlib.sha256(orjson.dumps(stored, option=orjson.OPT_SORT_KEYS)).hexdigest()
        found, was = self.ctx.store.create_job_once(job_id, user, stored, key, digest)
        if was != digest:
            raise IdempotencyKeyReusedError(
                f"idempotency key {key_name or key!r} was already used to create a job with "
                "another body; send a new key for a new job"
            )
        return found

    def list_jobs(self, user: str) -> list[dict[str, Any]]:
        out = []
        for job_id, doc, created, updated in self.ctx.store.list_jobs(user):
            d = self._describe(job_id, doc, created, updated)
            d.pop("process")
            out.append(d)
        return out

    def describe(self, user: str, job_id: str) -> dict[str, Any]:
        doc, created, updated = self.job_of(user, job_id)
        return self._describe(job_id, doc, created, updated)

    def patch(self, user: str, job_id: str, body: dict[str, Any]) -> None:
        doc, _, _ = self.job_of(user, job_id)
        if self.status_of(job_id, doc)["status"] in ACTIVE:
            raise JobLockedError(f"job {job_id!r} is queued or running; cancel it first")
        if "process" in body:
            doc["process"] = {"process_graph": graph_of(body)}
        check_meta(body)
        for key in ("title", "description"):
            if key in body:
                doc[key] = body[key]
        self.ctx.store.update_job(job_id, doc)

    def delete(self, user: str, job_id: str) -> None:
        self.job_of(user, job_id)
        self.ctx.store.delete_job(job_id)

    async def start(self, user: str, job_id: str) -> None:
        ctx = self.ctx
        doc, _, _ = self.job_of(user, job_id)
        if self.status_of(job_id, doc)["status"] in ACTIVE:
            return
        if ctx.publish is None:
            raise ServiceUnavailableError("this node runs no batch-job agent")
        from gravitas.streams.openeo.app import resolved_graph

        graph = resolved_graph(ctx, user, doc["process"]["process_graph"])
        ids = [str(a.get("id", "")) for a in load_collections(graph)]
        placement = await ctx.services.run_compute(place, ctx.services, ids)
        if not placement.local:
            raise OpenEOError(
                f"job {job_id!r} was changed to load collections of node "
                f"{placement.node_id!r}: a job runs on the node it was created for; create "
                "a new job for this graph (it is sent to that node)",
                code="FeatureUnsupported",
                status=501,
            )
        run_id = f"r-{uuid.uuid4().hex[:16]}"
        doc["run_id"] = run_id
        doc.pop("cancel_run", None)
        ctx.store.update_job(job_id, doc)
        event = OpenEOJobRequested(job_id=job_id, run_id=run_id, user=user, process_graph=graph)
        await ctx.publish("openeo.jobs", event)

    def cancel(self, user: str, job_id: str) -> None:
        doc, _, _ = self.job_of(user, job_id)
        if doc.get("run_id"):
            doc["cancel_run"] = doc["run_id"]
            self.ctx.store.update_job(job_id, doc)

    def results(self, user: str, job_id: str) -> dict[str, Any]:
        """What a results document needs: the result file's metadata and the job's
        title and times (no location: each node signs its own download links)."""
        doc, created, _ = self.job_of(user, job_id)
        state = self.status_of(job_id, doc)
        if state["status"] != "finished" or not state.get("result"):
            raise JobNotFinishedError(f"job {job_id!r} is {state['status']}, not finished")
        meta = state["result"]
        return {
            "filename": meta["filename"],
            "media_type": meta["media_type"],
            "size": meta["size"],
            "title": doc.get("title"),
            "created": created,
            "updated": float(state["updated"]),
        }

    async def asset(self, job_id: str, filename: str) -> tuple[bytes, str]:
        """The bytes and media type of a finished job's result file."""
        services = self.ctx.services
        state = self.ctx.store.status(job_id)
        if state is None or not state.get("result") or state["result"]["filename"] != filename:
            raise NotFoundError(f"job {job_id!r} has no result file {filename[:100]!r}")
        meta = state["result"]
        if meta.get("tree"):  # a Zarr store: one ZIP of its objects
            from gravitas.agents.graphs.publish import zip_prefix

            data = await services.run_compute(zip_prefix, services.object_store, meta["key"])
        else:
            data = await services.run_compute(services.object_store.get_bytes, meta["key"])
        return data, str(meta["media_type"])

    def owner(self, job_id: str) -> str | None:
        found = self.ctx.store.get_job(job_id) if JOB_ID_RE.match(job_id) else None
        return found[0] if found else None

    def logs(self, user: str, job_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        self.job_of(user, job_id)
        return self.ctx.store.logs(job_id, after, limit)
