"""Mount the openEO API on a node's edge (called by ``streams/edge/assemble.py``)."""

from __future__ import annotations

from fastapi import FastAPI

from gravitas.agents.services import NodeServices
from gravitas.schemas.base import Event
from gravitas.schemas.codec import encode
from gravitas.streams.edge.app import EdgeContext
from gravitas.streams.openeo.app import mount_openeo
from gravitas.streams.openeo.context import OpenEOContext


def mount_on_edge(app: FastAPI, services: NodeServices, edge: EdgeContext) -> OpenEOContext:
    """Add ``/openeo/1.2`` and ``/.well-known/openeo`` to the edge app."""

    async def publish(topic: str, event: Event) -> None:
        await edge.transport.publish(topic, event.key().encode(), encode(event))
        edge.metrics.published.labels(topic).inc()

    ctx = OpenEOContext(services, edge.token, dict(edge.peer_keys), publish)
    extra = []
    if "openeo.jobs" in edge.topology.names:
        from gravitas.streams.openeo.jobs import jobs_router
        from gravitas.streams.openeo.jobs_peer import peer_jobs_router

        extra += [jobs_router(ctx), peer_jobs_router(ctx)]
    mount_openeo(app, ctx, extra)
    return ctx
