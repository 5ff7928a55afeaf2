"""Entry point: the typer app with every command, and error handling for users."""

from __future__ import annotations

import typer

from gravitas.streams.cli import (
    broker_cmd,
    catalog_cmd,
    config_cmd,
    datacube_cmd,
    events_cmd,
    features_cmd,
    federation_cmd,
    ingest_cmd,
    keys_cmd,
    methane_cmd,
    module_cmd,
    monitor_cmd,
    node_cmd,
    pixels_cmd,
    quickstart_cmd,
    samples_cmd,
    train_cmd,
    vector_cmd,
    webhooks_cmd,
    workflow_cmd,
)
from gravitas.streams.cli.entry import run

app = typer.Typer(
    name="gravitas",
    help="gravitas: federated geospatial-temporal climate data, processed where it lives.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
node_cmd.register(app)
events_cmd.register(app)
federation_cmd.register(app)
keys_cmd.register(app)
broker_cmd.register(app)
config_cmd.register(app)
ingest_cmd.register(app)
pixels_cmd.register(app)
features_cmd.register(app)
quickstart_cmd.register(app)
vector_cmd.register(app)
catalog_cmd.register(app)
datacube_cmd.register(app)
methane_cmd.register(app)
samples_cmd.register(app)
train_cmd.register(app)
webhooks_cmd.register(app)
monitor_cmd.register(app)
module_cmd.register(app)
workflow_cmd.register(app)


def main() -> None:
    """Run the CLI; every error prints one clear line and exits with status 2."""
    run(app)
