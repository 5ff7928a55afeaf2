"""An embedded gravitas node: every agent on the in-process bus, plus the HTTP edge."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from types import TracebackType

import orjson

from gravitas.agents.base import Agent
from gravitas.agents.services import NodeServices
from gravitas.schemas.settings import Settings
from gravitas.streams.client import Client
from gravitas.streams.edge.app import EdgeContext, create_app
from gravitas.streams.edge.federation import federation_router
from gravitas.streams.edge.server import EdgeServer
from gravitas.streams.metrics import NodeMetrics
from gravitas.streams.registry import select_agents
from gravitas.streams.runners.memory import MemoryRunner
from gravitas.streams.stac import stac_router
from gravitas.streams.stac.publishing import PublishedRegistrations
from gravitas.streams.topology import Topology
from gravitas.streams.transports.edge import NODE_FILE
from gravitas.streams.transports.inprocess import InProcessTransport
from gravitas.streams.transports.memory import MemoryBus

log = logging.getLogger("gravitas.node")


def write_node_file(settings: Settings, edge_url: str) -> None:
    """Tell local CLIs where this node's edge listens."""
    info = {
        "node_id": settings.node_id,
        "edge_url": edge_url,
        "pid": os.getpid(),
        "broker": settings.broker,
    }
    path = settings.data_dir / NODE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(info))
    tmp.replace(path)


def remove_node_file(settings: Settings) -> None:
    """Forget the edge address when the node stops."""
    (settings.data_dir / NODE_FILE).unlink(missing_ok=True)


class EmbeddedNode:
    """A whole node in this process on ``memory://`` (the embedded default)."""

    def __init__(
        self,
        settings: Settings,
        agents: Sequence[Agent] | None = None,
        topology: Topology | None = None,
        serve_http: bool = True,
    ) -> None:
        self.settings = settings
        self.topology = topology or Topology.for_settings(settings)
        self.agents = list(agents) if agents is not None else select_agents(settings.agents)
        self.services = NodeServices(settings)
        self.metrics = NodeMetrics()
        self.bus = MemoryBus()
        self.transport = InProcessTransport(self.bus, self.topology)
        self.runner = MemoryRunner(
            self.bus,
            self.topology,
            self.agents,
            self.services,
            self.metrics,
            node_id=settings.node_id,
            group=settings.consumer_group,
            retry_attempts=settings.retry_attempts,
        )
        self.serve_http = serve_http
        self.edge: EdgeServer | None = None

    @property
    def edge_url(self) -> str | None:
        """URL of the running edge, if any."""
        return self.edge.url if self.edge else None

    async def start(self) -> None:
        """Start the agents, then the edge."""
        await self.runner.start()
        if self.serve_http:
            ctx = EdgeContext(
                self.settings,
                self.topology,
                self.transport,
                self.metrics,
                [a.name for a in self.agents],
            )
            registrations = PublishedRegistrations(
                self.services, self.transport, asyncio.get_running_loop()
            )
            routers = [
                stac_router(
                    self.services.catalog,
                    self.settings,
                    registrations=registrations,
                    objects=self.services.object_store,
                ),
                federation_router(self.services),
            ]
            self.edge = EdgeServer(
                create_app(ctx, routers=routers), self.settings.http_host, self.settings.http_port
            )
            await self.edge.start()
            if self.settings.public_url is None:
                self.services.public_url = self.edge.url
            write_node_file(self.settings, self.edge.url)
        log.info(
            "node %s started on memory:// with %d agents",
            self.settings.node_id,
            len(self.agents),
            extra={"edge": self.edge_url},
        )

    async def stop(self) -> None:
        """Stop the edge, then the agents (each after its current record)."""
        if self.edge is not None:
            remove_node_file(self.settings)
            await self.edge.stop()
            self.edge = None
        await self.runner.stop()
        self.services.close()

    def client(self) -> Client:
        """An SDK client bound to this node's in-process bus."""
        return Client(
            "memory://",
            topology=self.topology,
            transport=self.transport,
            node_id=self.settings.node_id,
            data_dir=self.settings.data_dir,
        )

    async def __aenter__(self) -> EmbeddedNode:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
