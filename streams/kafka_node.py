"""A gravitas node on Kafka: a faust worker running every agent, plus the HTTP edge."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Sequence

import faust

from gravitas.agents.base import Agent
from gravitas.agents.services import NodeServices
from gravitas.schemas.settings import Settings
from gravitas.streams.edge.assemble import node_edge_app
from gravitas.streams.edge.server import EdgeServer
from gravitas.streams.logs import quiet_transient_kafka_errors
from gravitas.streams.metrics import NodeMetrics, watch_lag
from gravitas.streams.node import remove_node_file, write_node_file
from gravitas.streams.registry import select_agents
from gravitas.streams.runners.kafka import KafkaRunner, build_app, run_sync_prepare
from gravitas.streams.topology import Topology
from gravitas.streams.transports.kafka import KafkaTransport, bootstrap_servers
from gravitas.streams.webhooks.worker import DeliveryWorker

log = logging.getLogger("gravitas.node")


def run_kafka_node(
    settings: Settings,
    agents: Sequence[Agent] | None = None,
    topology: Topology | None = None,
    serve_http: bool = True,
) -> None:
    """Create the topics, then run a faust worker until SIGINT/SIGTERM (blocking).

    faust's worker owns the event loop and the signals; on shutdown it stops the agents
    after their current batch and commits their offsets.
    """
    topology = topology or Topology.for_settings(settings)
    agents = list(agents) if agents is not None else select_agents(settings.agents)
    run_sync_prepare(settings, topology)
    services = NodeServices(settings)
    metrics = NodeMetrics()
    watch_lag(metrics, bootstrap_servers(settings.broker), [settings.consumer_group])
    app = build_app(settings)
    runner = KafkaRunner(app, settings, topology, agents, services, metrics)

    if settings.webhook_delivery:
        runner.add_task(DeliveryWorker(settings, topology, metrics).run_forever)

    if serve_http:

        async def serve_edge() -> None:
            transport = KafkaTransport(settings.broker, topology)
            app = node_edge_app(services, topology, transport, metrics, [a.name for a in agents])
            edge = EdgeServer(app, settings.http_host, settings.http_port)
            await edge.start()
            if settings.public_url is None:
                services.public_url = edge.url
            write_node_file(settings, edge.url)
            log.info("node %s edge at %s", settings.node_id, edge.url)
            try:
                await asyncio.Event().wait()
            finally:
                remove_node_file(settings)
                await edge.stop()
                await transport.close()

        runner.add_task(serve_edge)

    log.info(
        "node %s starting on %s with %d agents (group %s)",
        settings.node_id,
        settings.broker,
        len(agents),
        settings.consumer_group,
    )
    worker = faust.Worker(
        app,
        loglevel="DEBUG" if settings.log_level == "DEBUG" else "WARNING",
        quiet=True,
        redirect_stdouts=False,
    )
    worker.spinner = None  # its cursor escape codes would land in the node's log
    quiet_transient_kafka_errors()
    _exit_if_shutdown_hangs(worker)
    try:
        worker.execute_from_commandline()
    finally:
        services.close()


def _exit_if_shutdown_hangs(worker: faust.Worker, grace_s: float = 30.0) -> None:
    """A shutdown that hangs (e.g. the broker is gone) ends the process after ``grace_s``:
    uncommitted records are processed again by the next worker, so nothing is lost."""

    def watch() -> None:
        while not worker.should_stop:
            time.sleep(0.5)
        time.sleep(grace_s)
        log.error("shutdown did not finish within %.0fs; exiting", grace_s)
        os._exit(3)

    threading.Thread(target=watch, name="shutdown-watchdog", daemon=True).start()
