"""``gravitas broker``: a real single-node Apache Kafka (KRaft) for local use."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from gravitas.streams.cli.common import console, out


def broker(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", "-d", help="Broker data dir (kept; a restart reuses it). Default: a temp dir."
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", "-p", help="Client port on 127.0.0.1 (default: free one)."),
    ] = None,
    heap: Annotated[str, typer.Option("--heap", help="JVM heap, e.g. 512m.")] = "512m",
) -> None:
    """Start Apache Kafka from Maven Central jars (fetched and cached on first use).

    Prints the bootstrap address, then runs until Ctrl-C / SIGTERM.

    Example: gravitas broker --data ./kafka --port 9092
    """
    from gravitas.streams.broker import KAFKA_VERSION, KafkaBroker

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    kafka = KafkaBroker(
        data_dir=data, port=port, heap=heap, progress=lambda m: console.print(f"[dim]{m}[/]")
    )
    console.print(f"starting Apache Kafka {KAFKA_VERSION} (KRaft) ...")
    with kafka:
        out.print(f"bootstrap: {kafka.bootstrap}")
        out.print(f"export GRAVITAS_BROKER={kafka.url}", highlight=False)
        stop.wait()
        console.print("stopping the broker ...")


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command()(broker)
