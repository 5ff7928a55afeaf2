"""``gravitas datacube request.json [--wait]``: request an AI-ready datacube.

The JSON file holds a ``DatacubeRequested`` (``request_id`` may be left out). With
``--wait`` a progress bar follows the request's ``Progress`` events and the result is
printed; ``--embedded`` runs a node in this process on the data dir instead of talking
to a running one.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from pydantic import ValidationError
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar
from rich.table import Table

from gravitas.schemas.errors import InputError
from gravitas.schemas.events import DatacubeReady, DatacubeRequested, Progress
from gravitas.streams.cli.common import (
    BrokerOpt,
    DataOpt,
    EdgeOpt,
    console,
    out,
    print_reply,
    settings_from,
)
from gravitas.streams.client import Client

__all__ = ["load_request", "register"]


def load_request(path: Path) -> DatacubeRequested:
    """Read and validate a request file (a missing ``request_id`` gets a fresh one)."""
    try:
        doc: dict[str, Any] = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read a JSON request: {exc}") from exc
    doc.setdefault("request_id", f"dc-{uuid.uuid4().hex[:12]}")
    try:
        return DatacubeRequested.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(f"{path}: invalid datacube request: {problems}") from None


async def _follow(client: Client, req: DatacubeRequested, bar: Bar) -> None:
    task = bar.add_task("queued", total=1.0)
    async for event in client.subscribe("progress", from_beginning=True):
        if isinstance(event, Progress) and event.request_id == req.request_id:
            bar.update(task, completed=event.fraction, description=f"{event.stage} {event.message}")


async def _drive(
    client: Client, req: DatacubeRequested, wait: bool, timeout: float
) -> DatacubeReady | None:
    if not wait:
        await client.publish(req)
        return None
    with Bar(
        TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        follower = asyncio.create_task(_follow(client, req, bar))
        try:
            return await client.request_datacube(req, timeout)
        finally:
            follower.cancel()


def show(reply: DatacubeReady) -> None:
    """Print a result: status, hrefs and patches per split and class."""
    if reply.status != "ok":
        console.print(f"[bold red]failed[/] at {reply.failed_step}: {reply.error}", highlight=False)
        return
    out.print(
        f"[bold green]ok[/] {reply.collection_id}  gap-filled {reply.gap_filled_fraction:.2%}"
    )
    for key, href in reply.hrefs.items():
        out.print(f"  {key}: {href}", highlight=False)
    classes = sorted({c for per in reply.class_counts.values() for c in per})
    table = Table("split", "patches", *classes)
    for split, n in reply.counts.items():
        per = reply.class_counts.get(split, {})
        table.add_row(split, str(n), *(str(per.get(c, 0)) for c in classes))
    out.print(table)


def datacube(
    request: Annotated[Path, typer.Argument(help="JSON file with a DatacubeRequested.")],
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow progress, print the result.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 1800.0,
    embedded: Annotated[
        bool, typer.Option("--embedded", help="Run a node in this process on --data.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")] = False,
    broker: BrokerOpt = None,
    data: DataOpt = None,
    edge: EdgeOpt = None,
) -> None:
    """Request an AI-ready datacube (harmonize agent).

    Example: gravitas datacube request.json --wait
    """
    req = load_request(request)
    settings = settings_from(broker, data)
    wait = wait or embedded

    async def go() -> DatacubeReady | None:
        if embedded:
            from gravitas.streams.node import EmbeddedNode

            async with EmbeddedNode(settings, serve_http=False) as node:
                return await _drive(node.client(), req, wait, timeout)
        async with Client(settings.broker, edge_url=edge, data_dir=settings.data_dir) as client:
            return await _drive(client, req, wait, timeout)

    reply = asyncio.run(go())
    print_reply(reply, req.request_id, req.reply_topic, json_out, show)


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command()(datacube)
