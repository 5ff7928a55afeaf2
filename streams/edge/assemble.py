"""The edge app of a node, assembled the same way by the embedded and the Kafka node:
events routes, the STAC API (transactions published to the federation) and
``/federation``, with the node's token and its peers' keys."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fastapi import FastAPI

from gravitas.agents.services import NodeServices
from gravitas.agents.signing import trusted_keys
from gravitas.streams.edge.app import EdgeContext, create_app
from gravitas.streams.edge.auth import edge_token, with_token
from gravitas.streams.edge.federation import federation_router
from gravitas.streams.metrics import NodeMetrics
from gravitas.streams.monitor.federation import federation_metrics_router, node_federation
from gravitas.streams.openeo.mount import mount_on_edge
from gravitas.streams.stac.publishing import PublishedRegistrations
from gravitas.streams.stac.router import stac_router
from gravitas.streams.topology import Topology
from gravitas.streams.transports.base import Transport
from gravitas.streams.web.live import live_router
from gravitas.streams.web.page import page_router
from gravitas.streams.web.tiles import tiles_router
from gravitas.streams.webhooks.api import subscriptions_router
from gravitas.streams.webhooks.inbound import webhooks_router


def node_edge_app(
    services: NodeServices,
    topology: Topology,
    transport: Transport,
    metrics: NodeMetrics,
    agents: Sequence[str],
) -> FastAPI:
    """The node's edge; creates the token and signing key files on first start."""
    settings = with_token(services.settings)
    identity = services.identity  # generated now on a first start, not at first use
    ctx = EdgeContext(
        settings,
        topology,
        transport,
        metrics,
        list(agents),
        token=edge_token(settings),
        peer_keys={
            k: v for k, v in trusted_keys(settings, identity).items() if k != identity.node_id
        },
    )
    registrations = PublishedRegistrations(services, transport, asyncio.get_running_loop())
    routers = [
        stac_router(
            services.catalog,
            settings,
            registrations=registrations,
            objects=services.object_store,
        ),
        federation_router(services),
        webhooks_router(ctx),
        subscriptions_router(ctx),
        tiles_router(services),
        page_router(services),
        live_router(settings, topology, transport, node_federation(settings, identity, metrics)),
        federation_metrics_router(identity, metrics),
    ]
    app = create_app(ctx, routers=routers)
    mount_on_edge(app, services, ctx)
    return app
