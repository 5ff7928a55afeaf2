"""``gravitas workflow run|status|cancel|templates``: workflows on a node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.tree import Tree

from gravitas.agents.modules.catalog import node_catalog
from gravitas.agents.workflows.shipped import template_names, template_text
from gravitas.agents.workflows.spec import load_spec, validate
from gravitas.schemas.errors import InputError
from gravitas.schemas.workflows import WorkflowStatus
from gravitas.streams.cli.common import (
    BrokerOpt,
    DataOpt,
    EdgeOpt,
    console,
    out,
    run,
    settings_from,
)
from gravitas.streams.client import Client
from gravitas.streams.workflow_client import cancel_workflow, run_status, run_workflow

workflow_app = typer.Typer(help="Run workflows of modules on a node.", no_args_is_help=True)
ICONS = {"pending": "·", "running": "…", "ok": "✓", "failed": "✗", "skipped": "-"}


def parse_params(items: list[str]) -> dict[str, Any]:
    """``k=v`` pairs; ``v`` is JSON when it parses (numbers, lists), else a string."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--param must be NAME=VALUE, got {item!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def tree(status: WorkflowStatus) -> Tree:
    """The run as a tree of steps with their state."""
    root = Tree(f"run {status.run_id}: {status.status} ({status.fraction:.0%})")
    for step, state in status.steps.items():
        root.add(f"{ICONS.get(state, '?')} {step}: {state}")
    for w in status.warnings:
        root.add(f"[yellow]warning: {w}[/]")
    if status.error:
        root.add(f"[red]{status.error}[/]")
    return root


@workflow_app.command("run")
def run_cmd(
    spec_path: Annotated[Path, typer.Argument(help="Workflow spec (YAML or JSON).")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow the run.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 600.0,
    broker: BrokerOpt = None,
    data: DataOpt = None,
    edge: EdgeOpt = None,
) -> None:
    """Validate a spec here, then run it on the node (prints the run id).

    Example: gravitas workflow run era5-ensemble.yaml --param members=[0,1] --wait
    """
    settings = settings_from(broker=broker, data=data)
    if not spec_path.is_file():
        raise InputError(f"workflow spec {spec_path} does not exist")
    spec = load_spec(spec_path)
    validate(spec, node_catalog(settings.data_dir))  # refused here, before anything runs
    params = parse_params(param or [])

    async def go() -> WorkflowStatus | str:
        async with Client(settings.broker, edge_url=edge, data_dir=settings.data_dir) as c:
            if not wait:
                return await run_workflow(c, spec, params, wait=False)
            with Live(Tree("starting"), console=console, refresh_per_second=4) as live:
                return await run_workflow(
                    c, spec, params, timeout=timeout, on_status=lambda s: live.update(tree(s))
                )

    result = run(go())
    if isinstance(result, str):
        out.print(result)
        return
    out.print_json(
        result.model_dump_json(
            include={"run_id", "status", "outputs", "transfer", "error", "failed_step", "warnings"}
        )
    )
    if result.status != "succeeded":
        raise typer.Exit(1)


@workflow_app.command("status")
def status_cmd(
    run_id: Annotated[str, typer.Argument(help="The run id `workflow run` printed.")],
    broker: BrokerOpt = None,
    data: DataOpt = None,
    edge: EdgeOpt = None,
) -> None:
    """Print the latest status of a run (steps, outputs, provenance) as JSON.

    Example: gravitas workflow status era5-ensemble-0123456789ab
    """
    settings = settings_from(broker=broker, data=data)

    async def go() -> WorkflowStatus:
        async with Client(settings.broker, edge_url=edge, data_dir=settings.data_dir) as c:
            return await run_status(c, run_id)

    status = run(go())
    console.print(tree(status))
    out.print_json(status.model_dump_json())


@workflow_app.command("cancel")
def cancel_cmd(
    run_id: Annotated[str, typer.Argument(help="The run to cancel.")],
    broker: BrokerOpt = None,
    data: DataOpt = None,
    edge: EdgeOpt = None,
) -> None:
    """Cancel a run: no new step starts; it ends cancelled.

    Example: gravitas workflow cancel era5-ensemble-0123456789ab
    """
    settings = settings_from(broker=broker, data=data)

    async def go() -> None:
        async with Client(settings.broker, edge_url=edge, data_dir=settings.data_dir) as c:
            await cancel_workflow(c, run_id)

    run(go())
    console.print(f"asked to cancel {run_id}")


@workflow_app.command("template")
def template_cmd(
    name: Annotated[str, typer.Argument(help="A shipped template name.")],
    dest: Annotated[Path | None, typer.Option("--out", "-o", help="Write it here.")] = None,
) -> None:
    """Print (or write) a shipped template; templates: stageiv-exceedance, era5-ensemble,
    flood-screening.

    Example: gravitas workflow template era5-ensemble --out era5.yaml
    """
    text = template_text(name)
    if dest is None:
        out.print(text, markup=False, highlight=False)
        return
    dest.write_text(text)
    console.print(f"wrote {dest} (templates: {', '.join(template_names())})")


def register(app: typer.Typer) -> None:
    """Add ``gravitas workflow`` to the CLI."""
    app.add_typer(workflow_app, name="workflow")
