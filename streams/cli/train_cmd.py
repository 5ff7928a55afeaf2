"""``gravitas train spec.yaml [--wait]``: federated training across the federation.

The file (YAML or JSON) holds a :class:`~gravitas.schemas.training.TrainingSpec`, or a
``TrainingRequested`` with ``request_id`` and ``spec``. The node it reaches coordinates:
it runs the Flower server, invites every node holding data, and answers on
``models.trained``. With ``--wait`` a progress bar follows the rounds.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar
from rich.table import Table

from gravitas.schemas.errors import InputError
from gravitas.schemas.events import Progress
from gravitas.schemas.training import ModelTrained, TrainingRequested
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

__all__ = ["load_training", "register"]


def load_training(path: Path) -> TrainingRequested:
    """Read and validate a training file (YAML or JSON; a fresh ``request_id`` if none)."""
    try:
        doc: Any = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read a YAML/JSON training spec: {exc}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: a training spec is a mapping, got {type(doc).__name__}")
    if "spec" not in doc:
        doc = {"spec": doc}
    doc.setdefault("request_id", f"train-{uuid.uuid4().hex[:12]}")
    try:
        return TrainingRequested.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(f"{path}: invalid training spec: {problems}") from None


async def _follow(client: Client, req: TrainingRequested, bar: Bar) -> None:
    task = bar.add_task("waiting for participants", total=1.0)
    async for event in client.subscribe("progress", from_beginning=True):
        if isinstance(event, Progress) and event.request_id == req.request_id:
            bar.update(task, completed=event.fraction, description=event.message)


def show(reply: ModelTrained) -> None:
    """Print the outcome: rounds with accuracy per node, the model and its item."""
    if reply.status != "ok":
        console.print(f"[bold red]failed[/]: {reply.error}", highlight=False)
        return
    nodes = sorted({n for r in reply.rounds for n in r.per_node})
    table = Table("round", "accuracy", "loss", *nodes, title=f"{reply.request_id}")
    for r in reply.rounds:
        table.add_row(str(r.round), f"{r.accuracy:.3f}", f"{r.loss:.3f}",
                      *(f"{r.per_node.get(n, float('nan')):.3f}" for n in nodes))  # fmt: skip
    out.print(table)
    out.print(f"model: {reply.model_href}  (STAC item models/{reply.item_id})", highlight=False)
    out.print(f"participants {reply.participants}; parameters moved {reply.bytes_moved} bytes")
    for line in reply.excluded:
        out.print(f"[yellow]excluded[/] {line}", highlight=False)


def train(
    spec: Annotated[Path, typer.Argument(help="YAML or JSON file with a training spec.")],
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the rounds, print the model.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 3600.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")] = False,
    broker: BrokerOpt = None,
    data: DataOpt = None,
    edge: EdgeOpt = None,
) -> None:
    """Train a model across the federation where the data lives (Flower).

    Example: gravitas train spec.yaml --wait
    """
    req = load_training(spec)
    settings = settings_from(broker, data)

    async def go() -> ModelTrained | None:
        async with Client(settings.broker, edge_url=edge, data_dir=settings.data_dir) as client:
            if not wait:
                await client.publish(req)
                return None
            with Bar(TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(),
                     console=console) as bar:  # fmt: skip
                follower = asyncio.create_task(_follow(client, req, bar))
                try:
                    reply = await client.request(req, "models.trained", timeout)
                finally:
                    follower.cancel()
            assert isinstance(reply, ModelTrained)
            return reply

    reply = asyncio.run(go())
    print_reply(reply, req.request_id, req.reply_topic, json_out, show)


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command()(train)
