"""``gravitas monitor``: a live terminal view of a node's pipeline (rich Live), or one
JSON snapshot for scripts (``--once --json``). The monitor reads the topics without
joining the workers' consumer groups (see :mod:`gravitas.streams.monitor.snapshot`)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import orjson
import typer
from rich.live import Live

from gravitas.schemas.errors import TransportError
from gravitas.streams.cli.common import (
    BrokerOpt,
    DataOpt,
    EdgeOpt,
    console,
    run,
    settings_from,
    topology_for,
)
from gravitas.streams.client import open_transport
from gravitas.streams.monitor.federation import cli_federation
from gravitas.streams.monitor.view import render
from gravitas.streams.transports.edge import discover_edge
from gravitas.streams.web.live import watcher_for


def monitor(
    once: Annotated[
        bool, typer.Option("--once", help="Watch for --window seconds, print one snapshot, exit.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the snapshot as JSON.")] = False,
    window: Annotated[
        float,
        typer.Option(
            "--window", help="Seconds to watch before a --once snapshot.", min=0.0, max=3600.0
        ),
    ] = 3.0,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between redraws.", min=0.1, max=60.0)
    ] = 1.0,
    rows: Annotated[int, typer.Option("--rows", help="Rows per table.", min=1, max=1000)] = 10,
    federation: Annotated[
        bool,
        typer.Option(
            "--federation/--no-federation",
            help="Also show every node of GRAVITAS_PEERS from its signed metrics.",
        ),
    ] = True,
    broker: BrokerOpt = None,
    data: DataOpt = None,
    edge: EdgeOpt = None,
) -> None:
    """Watch a node: topics with rates and lag, running requests, dead letters, events,
    and (with peers configured) every node of the federation: rates, lag, dead letters,
    requests, read from each allow-listed peer's signed /federation/metrics.

    Example: gravitas monitor --broker kafka://127.0.0.1:9092 --once --json
    """
    settings = settings_from(broker, data)
    topology = topology_for(settings)

    async def watch() -> None:
        transport = open_transport(
            settings.broker, topology, edge_url=edge, data_dir=settings.data_dir
        )
        fed = None
        if federation:
            self_url = edge
            if self_url is None:
                with contextlib.suppress(TransportError):
                    self_url = discover_edge(settings.data_dir)
            fed = cli_federation(settings, self_url)
        watcher = watcher_for(settings, topology, transport, fed)
        try:
            async with watcher:
                if once:
                    await asyncio.sleep(window)
                    snap = await watcher.snapshot()
                    if as_json:
                        print(orjson.dumps(snap.to_dict()).decode(), flush=True)
                    else:
                        console.print(render(snap, rows))
                    return
                with Live(console=console, refresh_per_second=4, screen=False) as live:
                    while True:
                        snap = await watcher.snapshot()
                        if as_json:
                            print(orjson.dumps(snap.to_dict()).decode(), flush=True)
                        else:
                            live.update(render(snap, rows))
                        await asyncio.sleep(interval)
        finally:
            await transport.close()

    run(watch())


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor)
