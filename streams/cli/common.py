"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from gravitas.schemas.errors import InputError
from gravitas.schemas.settings import Settings, load_settings
from gravitas.streams.logs import configure_logging
from gravitas.streams.topology import Topology

T = TypeVar("T")

console = Console(stderr=True)
out = Console()

BrokerOpt = Annotated[
    str | None,
    typer.Option(
        "--broker",
        "-b",
        help="memory:// (embedded node) or kafka://HOST:PORT; default $GRAVITAS_BROKER.",
        show_default=False,
    ),
]
DataOpt = Annotated[
    Path | None,
    typer.Option(
        "--data", "-d", help="Node data directory; default $GRAVITAS_DATA_DIR.", show_default=False
    ),
]
EdgeOpt = Annotated[
    str | None,
    typer.Option(
        "--edge",
        help="URL of a node's HTTP edge (memory://); found in --data otherwise.",
        show_default=False,
    ),
]
NodeIdOpt = Annotated[
    str | None,
    typer.Option(
        "--node-id", help="This node's id; default $GRAVITAS_NODE_ID.", show_default=False
    ),
]


def settings_from(
    broker: str | None = None,
    data: Path | None = None,
    node_id: str | None = None,
    **more: Any,
) -> Settings:
    """Settings with the CLI's explicit options on top of env and config file."""
    return load_settings(broker=broker, data_dir=data, node_id=node_id, **more)


def existing_data_dir(settings: Settings) -> Path:
    """The data directory of a command that only reads it; never created here."""
    if not settings.data_dir.is_dir():
        raise InputError(
            f"data directory {settings.data_dir} does not exist; pass the --data of a node "
            "(`gravitas node --data DIR` creates it) or set GRAVITAS_DATA_DIR"
        )
    return settings.data_dir


def topology_for(settings: Settings) -> Topology:
    """The topology as the node with these settings declares it."""
    return Topology.for_settings(settings)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion (Ctrl-C ends it quietly)."""
    return asyncio.run(coro)


def setup_logs(settings: Settings, log_json: bool) -> None:
    """Configure logging from settings and the --log-json flag."""
    configure_logging(settings.log_level, json=log_json or settings.log_json)


def print_reply(reply: Any, request_id: str, reply_topic: str, json_out: bool, show: Any) -> None:
    """End a request command: what was published, or the reply (JSON or ``show``);
    exit 1 when the reply's status is not ok."""
    if reply is None:
        out.print(f"published {request_id}; the reply goes to {reply_topic}")
        return
    if json_out:
        out.print_json(reply.model_dump_json())
    else:
        show(reply)
    if reply.status != "ok":
        raise typer.Exit(1)
