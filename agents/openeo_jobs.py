"""The openEO batch-job agent: ``openeo.jobs`` -> ``openeo.job_updates``.

One :class:`OpenEOJobRequested` is one run of a job. The agent runs the graph with the
process-graph engine on the compute pool, writes the result file to the object store
under ``openeo/jobs/<job>/<run>/<file>`` (the same key on a replay, so the same bytes;
a Zarr store under the published ``graphs/openeo-jobs/<job>/<run>/result.zarr/``),
registers it as a STAC item of collection ``openeo-jobs`` and records the run's state
in the node's openEO store (it is the only writer of job states). A replay of a run
that finished changes nothing; a run whose worker was killed mid-way is re-delivered
and runs again to the same result, then finishes once. Cancelling (the edge marks the
run) stops it at the next progress step.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.schemas.base import Event
from gravitas.schemas.events import OpenEOJobRequested, OpenEOJobUpdate

log = logging.getLogger("gravitas.openeo.jobs")
JOBS_COLLECTION = "openeo-jobs"


class JobCanceledError(Exception):
    """Raised from the progress callback when the edge cancelled the run."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def result_item(
    event: OpenEOJobRequested, key: str, href: str, meta: dict[str, Any]
) -> dict[str, Any]:
    """The STAC item of a job's result file."""
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "id": f"{event.job_id}-{event.run_id}",
        "collection": JOBS_COLLECTION,
        "bbox": [-180.0, -90.0, 180.0, 90.0],
        "geometry": None,
        "properties": {"datetime": _now(), "openeo:job_id": event.job_id, "gravitas:key": key},
        "links": [],
        "assets": {
            meta.get("asset", meta["filename"]): {
                "href": href,
                "type": meta.get("asset_type", meta["media_type"]),
                "roles": ["data"],
                "file:size": meta["size"],
            }
        },
    }


JOBS_COLLECTION_DOC: dict[str, Any] = {
    "type": "Collection",
    "stac_version": "1.0.0",
    "id": JOBS_COLLECTION,
    "description": "Results of openEO batch jobs run on this node",
    "license": "proprietary",
    "extent": {
        "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
        "temporal": {"interval": [[None, None]]},
    },
    "links": [],
}


def _publish_tree(services: Any, job: str, run: str, result: Any) -> dict[str, Any]:
    """A directory result (Zarr) under the published ``graphs/`` prefix; the job's
    download is a ZIP of it (``<name>.zip``), made from the store when asked for."""
    from gravitas.agents.graphs.publish import GRAPHS_PREFIX, put_tree

    try:
        stat = put_tree(
            services.object_store,
            f"{GRAPHS_PREFIX}openeo-jobs/{job}/{run}/{result.filename}",
            result.path,
        )
    finally:
        result.close()
    return {
        "key": stat.prefix,
        "tree": True,
        "filename": result.packed_filename,
        "media_type": result.packed_media_type,
        "asset": result.filename,
        "asset_type": result.media_type,
        "format": result.format,
        "size": stat.size,
        "files": stat.files,
        "sha256": stat.sha256,
    }


class OpenEOJobAgent(Agent):
    """Runs openEO batch jobs."""

    name = "openeo_jobs"
    topic = "openeo.jobs"

    def __init__(self) -> None:
        self._services: Any = None

    async def start(self, services: Any) -> None:
        self._services = services

    @cached_property
    def store(self) -> Any:
        from gravitas.streams.openeo.store import OpenEOStore

        return OpenEOStore.for_data_dir(self._services.data_dir)

    async def stop(self) -> None:
        if "store" in self.__dict__:
            self.__dict__.pop("store").close()

    def _update(self, ev: OpenEOJobRequested, status: str, progress: float, **kw: Any) -> Emit:
        return Emit(
            "openeo.job_updates",
            OpenEOJobUpdate(
                job_id=ev.job_id, run_id=ev.run_id, status=status, progress=progress, **kw
            ),
        )

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        assert isinstance(event, OpenEOJobRequested)
        from gravitas.streams.openeo import engine
        from gravitas.streams.openeo.errors import OpenEOError
        from gravitas.streams.openeo.store import FINAL

        services = ctx.services
        self._services = services
        store = self.store
        job, run = event.job_id, event.run_id
        state = store.status(job)
        if state is not None and state["run"] == run and state["status"] in FINAL:
            return []  # a replay of a run that ended: nothing changes
        if store.cancel_requested(job, run):
            store.set_status(job, run, "canceled", 0.0)
            return [self._update(event, "canceled", 0.0, message="canceled before it started")]
        store.set_status(job, run, "running", 0.0)
        seq = len(store.logs(job))
        store.log(job, seq, "info", f"run {run} started on node {ctx.node_id}", _now())
        ctx.log.info("openEO job %s run %s started", job, run)

        def progress(fraction: float, message: str) -> None:
            if store.cancel_requested(job, run):
                raise JobCanceledError(job)
            store.set_status(job, run, "running", max(0.0, min(1.0, fraction)))

        try:
            result = await services.run_compute(
                engine.execute, event.process_graph, services, progress
            )
        except JobCanceledError:
            store.set_status(job, run, "canceled", 0.0)
            store.log(job, seq + 1, "warning", "canceled", _now())
            return [self._update(event, "canceled", 0.0, message="canceled")]
        except OpenEOError as exc:
            store.set_status(job, run, "error", 1.0, error=f"{exc.code}: {exc.message}")
            store.log(job, seq + 1, "error", f"{exc.code}: {exc.message}", _now())
            ctx.log.warning("openEO job %s failed: %s", job, exc.message)
            return [
                self._update(event, "error", 1.0, message=exc.message[:4000], error_code=exc.code)
            ]
        if getattr(result, "is_tree", False):
            meta = await services.run_compute(_publish_tree, services, job, run, result)
            key = meta["key"]
        else:
            data = result.read() if hasattr(result, "read") else result.data
            key = f"openeo/jobs/{job}/{run}/{result.filename}"
            await services.run_compute(services.object_store.put_bytes, key, data)
            meta = {
                "key": key,
                "filename": result.filename,
                "media_type": result.media_type,
                "format": result.format,
                "size": len(data),
            }
        size = meta["size"]
        href = services.object_store.href(key)
        services.catalog.upsert_collection(JOBS_COLLECTION_DOC)
        services.catalog.upsert_item(result_item(event, key, href, meta))
        store.set_status(job, run, "finished", 1.0, result=meta)
        store.log(job, seq + 1, "info", f"finished: {result.filename} ({size} bytes)", _now())
        ctx.log.info("openEO job %s run %s finished: %d bytes", job, run, size)
        return [self._update(event, "finished", 1.0, result_key=key)]
