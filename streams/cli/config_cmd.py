"""``gravitas config`` and ``gravitas schemas export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from gravitas.schemas.events import ALL_EVENTS
from gravitas.streams.cli.common import BrokerOpt, DataOpt, NodeIdOpt, console, out, settings_from
from gravitas.streams.topology import TOPICS


def config(
    broker: BrokerOpt = None,
    data: DataOpt = None,
    node_id: NodeIdOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the effective configuration, secrets masked.

    Sources, highest first: options, GRAVITAS_* variables, the GRAVITAS_CONFIG TOML file.

    Example: GRAVITAS_BROKER=kafka://127.0.0.1:9092 gravitas config
    """
    values = settings_from(broker, data, node_id).masked()
    if as_json:
        out.print(orjson.dumps(values, option=orjson.OPT_INDENT_2).decode(), highlight=False)
        return
    table = Table("setting", "value", "environment variable")
    for name, value in values.items():
        table.add_row(name, str(value), f"GRAVITAS_{name.upper()}")
    out.print(table)


schemas_app = typer.Typer(help="Event schemas for non-Python producers.", no_args_is_help=True)


@schemas_app.command("export")
def export(directory: Annotated[Path, typer.Argument(help="Output directory (created).")]) -> None:
    """Write a JSON Schema per event class, plus topics.json (topic -> event schemas).

    Example: gravitas schemas export ./schemas-json
    """
    directory.mkdir(parents=True, exist_ok=True)
    for cls in ALL_EVENTS:
        schema = cls.model_json_schema()
        schema["$id"] = f"gravitas:{cls.TYPE}"
        (directory / f"{cls.__name__}.schema.json").write_bytes(
            orjson.dumps(schema, option=orjson.OPT_INDENT_2)
        )
    index = {t.name: [f"{e.__name__}.schema.json" for e in t.events] for t in TOPICS}
    (directory / "topics.json").write_bytes(orjson.dumps(index, option=orjson.OPT_INDENT_2))
    console.print(f"wrote {len(ALL_EVENTS)} schemas and topics.json to {directory}")


def register(app: typer.Typer) -> None:
    """Add the commands to the app."""
    app.command()(config)
    app.add_typer(schemas_app, name="schemas")
