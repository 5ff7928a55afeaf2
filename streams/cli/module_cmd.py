"""``gravitas module list|show|publish|deprecate``: the node's module registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gravitas.agents.modules.catalog import REGISTRY_FILE, node_catalog
from gravitas.agents.modules.errors import UnknownModuleError
from gravitas.agents.modules.model import Module, split_ref
from gravitas.agents.modules.registry import ModuleRegistry, change_lifecycle, record_for
from gravitas.agents.signing import NodeIdentity
from gravitas.schemas.errors import InputError
from gravitas.streams.cli.common import (
    BrokerOpt,
    DataOpt,
    EdgeOpt,
    console,
    existing_data_dir,
    out,
    run,
    settings_from,
)
from gravitas.streams.client import Client

module_app = typer.Typer(
    help="Versioned modules (name@version) workflows run.", no_args_is_help=True
)


@module_app.command("list")
def list_cmd(data: DataOpt = None) -> None:
    """List every module version this node knows (built-in, installed, registered).

    Example: gravitas module list
    """
    settings = settings_from(data=data)
    table = Table(title="modules")
    for col in ("module", "lifecycle", "kind", "author", "provenance"):
        table.add_column(col)
    for m in node_catalog(settings.data_dir).all():
        prov = m.provenance.get("package") or m.provenance.get("source", "")
        table.add_row(m.ref, m.lifecycle, m.kind, m.author, prov)
    out.print(table)


@module_app.command("show")
def show_cmd(
    ref: Annotated[str, typer.Argument(help="name@version, e.g. downscale@1.0.0.")],
    data: DataOpt = None,
) -> None:
    """Print a module version as JSON (schemas, lifecycle, provenance).

    Example: gravitas module show flood-screen@1.0.0
    """
    settings = settings_from(data=data)
    split_ref(ref)
    out.print_json(node_catalog(settings.data_dir).get(ref).model_dump_json())


def _load_module(path: Path) -> Module:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"module file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"module file {path} is not JSON: {exc}") from None
    return Module.model_validate(data)


@module_app.command("publish")
def publish_cmd(
    path: Annotated[Path, typer.Argument(help="Module definition (JSON).")],
    broker: BrokerOpt = None,
    data: DataOpt = None,
    edge: EdgeOpt = None,
) -> None:
    """Sign a module version with this node's key and publish it to the federation.

    Example: gravitas module publish my-module.json
    """
    settings = settings_from(broker=broker, data=data)
    module = _load_module(path)
    record = record_for(module, NodeIdentity.load(settings))

    async def go() -> None:
        async with Client(settings.broker, edge_url=edge, data_dir=settings.data_dir) as c:
            await c.publish(record, "modules.registry")

    run(go())
    console.print(f"published {record.ref} ({module.lifecycle}) as node {record.owner}")


@module_app.command("deprecate")
def deprecate_cmd(
    ref: Annotated[str, typer.Argument(help="name@version this node published.")],
    broker: BrokerOpt = None,
    data: DataOpt = None,
    edge: EdgeOpt = None,
) -> None:
    """Deprecate a module version this node owns (pinned workflows still run, warned).

    Example: gravitas module deprecate my-module@1.0.0
    """
    settings = settings_from(broker=broker, data=data)
    split_ref(ref)
    reg = ModuleRegistry(existing_data_dir(settings) / REGISTRY_FILE)
    try:
        record = reg.record(ref)
    finally:
        reg.close()
    if record is None:
        raise UnknownModuleError(
            f"module {ref} is not in this node's registry; only published modules can be deprecated"
        )
    changed = change_lifecycle(record, "deprecated", NodeIdentity.load(settings))

    async def go() -> None:
        async with Client(settings.broker, edge_url=edge, data_dir=settings.data_dir) as c:
            await c.publish(changed, "modules.registry")

    run(go())
    console.print(f"deprecated {ref} (revision {changed.revision})")


def register(app: typer.Typer) -> None:
    """Add ``gravitas module`` to the CLI."""
    app.add_typer(module_app, name="module")
