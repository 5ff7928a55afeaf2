"""``gravitas node``: run every agent of a node until Ctrl-C / SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from gravitas.schemas.settings import Settings
from gravitas.streams.cli.common import (
    BrokerOpt,
    DataOpt,
    NodeIdOpt,
    console,
    settings_from,
    setup_logs,
)


async def run_embedded(settings: Settings) -> None:
    """Run an embedded node until SIGINT/SIGTERM, then stop it cleanly."""
    from gravitas.streams.node import EmbeddedNode

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with EmbeddedNode(settings) as node:
        console.print(
            f"[green]node {settings.node_id}[/] on memory:// with agents "
            f"{', '.join(a.name for a in node.agents)}; edge {node.edge_url} (Ctrl-C stops)",
            highlight=False,
            soft_wrap=True,  # one line in a log file too
        )
        await stop.wait()
        console.print("stopping ...")


def node(
    broker: BrokerOpt = None,
    data: DataOpt = None,
    node_id: NodeIdOpt = None,
    port: Annotated[
        int | None, typer.Option("--port", help="HTTP edge port (0 = any free).")
    ] = None,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="One JSON object per log line.")
    ] = False,
) -> None:
    """Run every agent of a node until Ctrl-C / SIGTERM.

    Example: gravitas node --broker kafka://127.0.0.1:9092 --data ./node-a --node-id a
    """
    settings = settings_from(broker, data, node_id, http_port=port)
    setup_logs(settings, log_json)
    if settings.is_memory:
        asyncio.run(run_embedded(settings))
    else:
        from gravitas.streams.kafka_node import run_kafka_node

        run_kafka_node(settings)


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command()(node)
