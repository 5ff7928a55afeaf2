"""``gravitas features``: user math and reducers computed next to the data.

Runs through the running node when there is one (Kafka, --edge, node.json), else on an
embedded node over the data dir; a rich progress bar follows the request's progress
events. Per-pixel answers (``--over time``, trends, models) stay in the object store and
are printed as hrefs.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from gravitas.schemas.codec import encode
from gravitas.schemas.errors import InputError
from gravitas.schemas.events import FeatureResult, Featurize, Progress
from gravitas.schemas.settings import Settings
from gravitas.streams.cli.common import (
    BrokerOpt,
    DataOpt,
    EdgeOpt,
    existing_data_dir,
    out,
    run,
    settings_from,
)
from gravitas.streams.cli.pixels_cmd import parse_bbox, parse_time, progress_bar


def parse_layers(items: list[str]) -> dict[str, str]:
    """``['ndvi=s2_b08', 'red=s2_b04']`` -> ``{'ndvi': 's2_b08', 'red': 's2_b04'}``."""
    if not items:
        raise InputError("--layers is required: name=layer (e.g. --layers rain=stageiv)")
    found: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            name, sep, layer = part.partition("=")
            if not sep or not name.strip() or not layer.strip():
                raise InputError(f"--layers takes name=layer (e.g. rain=stageiv), got {part!r}")
            found[name.strip()] = layer.strip()
    return found


def parse_reducers(text: str) -> tuple[list[str], list[float]]:
    """``'mean,max,q0.9'`` -> reducers and extra quantiles."""
    reducers: list[str] = []
    quantiles: list[float] = []
    for r in (p.strip() for p in text.split(",") if p.strip()):
        if r.startswith("q") and r not in ("q05", "q25", "q50", "q75", "q95"):
            try:
                quantiles.append(float(r[1:]))
            except ValueError:
                raise InputError(f"--reduce: {r!r} is not a reducer or a quantile q0.x") from None
        else:
            reducers.append(r)
    return reducers or ["count"], quantiles


async def _ask(
    settings: Settings, req: Featurize, edge: str | None, embedded: bool
) -> FeatureResult:
    from gravitas.streams.client import Client
    from gravitas.streams.featurize_sdk import featurize

    with progress_bar() as bar:
        task = bar.add_task("featurize", total=100)

        def step(ev: Progress) -> None:
            bar.update(task, completed=int(ev.fraction * 100), description=ev.stage)

        if embedded:
            from gravitas.streams.node import EmbeddedNode

            async with EmbeddedNode(settings, serve_http=False) as node:
                reply = await featurize(node.client(), req, 1800, step)
        else:
            async with Client(settings.broker, edge_url=edge, data_dir=settings.data_dir) as c:
                reply = await featurize(c, req, 1800, step)
        bar.update(task, completed=100)
    return reply


def featurize_anywhere(settings: Settings, req: Featurize, edge: str | None) -> FeatureResult:
    """Ask the running node, or an embedded one over the data dir."""
    from gravitas.streams.transports.edge import NODE_FILE

    running = not settings.is_memory or edge or (settings.data_dir / NODE_FILE).exists()
    if not running:
        existing_data_dir(settings)
    return run(_ask(settings, req, edge, embedded=not running))


def print_result(res: FeatureResult) -> None:
    """Tables of the values, extremes, model metrics and output hrefs."""
    if res.values:
        names = sorted({k for v in res.values.values() for k in v})
        table = Table(title=f"features ({res.request_id}, computed on {res.served_by})")
        table.add_column("time")
        for n in names:
            table.add_column(n, justify="right")
        for t, vals in res.values.items():
            table.add_row(t, *(f"{vals[n]:.6g}" if n in vals else "" for n in names))
        out.print(table)
    if res.extremes:
        table = Table(title="extremes")
        for col in ("lon", "lat", "time", "value"):
            table.add_column(col, justify="right")
        for m in res.extremes:
            table.add_row(f"{m.lon:.4f}", f"{m.lat:.4f}", m.time.isoformat(), f"{m.value:.4g}")
        out.print(table)
    if res.model:
        out.print(f"model {res.model['kind']}: accuracy {res.model['accuracy']:.3f} "
                  f"on {res.model['n_test']} held-out pixels")  # fmt: skip
        for name, imp in res.model["feature_importances"].items():
            out.print(f"  importance {name}: {imp:.3f}")
    for name, href in res.outputs.items():
        out.print(f"{name}: {href}")
    if res.item_id:
        out.print(f"STAC item features/{res.item_id}")


def register(app: typer.Typer) -> None:
    """Add ``gravitas features``."""

    @app.command("features")
    def features(
        expression: Annotated[
            str, typer.Argument(help="User math, e.g. 'rain' or '(nir - red) / (nir + red)'.")
        ],
        layers: Annotated[
            list[str], typer.Option("--layers", help="name=layer (repeat or comma-separate).")
        ],
        bbox: Annotated[str | None, typer.Option(help="W,S,E,N in degrees.")] = None,
        time: Annotated[str | None, typer.Option(help="T0/T1 (ISO, UTC).")] = None,
        reduce: Annotated[
            str,
            typer.Option(help="Reducers: min,max,mean,std,count,sum,q05..q95,q0.x,trend,extremes."),
        ] = "mean",
        over: Annotated[str, typer.Option(help="space, time (per pixel) or space-time.")] = "space",
        top_k: Annotated[int, typer.Option(help="Pixels the extremes reducer reports.")] = 10,
        level: Annotated[int | None, typer.Option(help="Grid level (default native).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
        out_file: Annotated[
            Path | None, typer.Option("--out", help="Write the JSON answer to this file.")
        ] = None,
        data: DataOpt = None,
        broker: BrokerOpt = None,
        edge: EdgeOpt = None,
    ) -> None:
        """Compute features next to the data; only the numbers (or hrefs) come back.

        Example: gravitas features 'rain' --layers rain=stageiv --bbox -81,32,-74,38
        --time 2018-09-13/2018-09-16 --reduce mean,max,q0.99 --over space-time
        """
        reducers, quantiles = parse_reducers(reduce)
        fields: dict[str, Any] = dict(
            request_id=f"cli-{uuid.uuid4().hex[:10]}",
            layers=parse_layers(layers), expression=expression, reducers=reducers,
            quantiles=quantiles, bbox=parse_bbox(bbox), time=parse_time(time),
            over=over, top_k=top_k, level=level,
        )  # fmt: skip
        try:
            req = Featurize.model_validate(fields)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"][:1]) or "request"
            raise InputError(
                f"--{where.replace('_', '-')}: {err['msg']} (got {err.get('input')!r})"
            ) from None
        settings = settings_from(broker, data, http_port=0)
        res = featurize_anywhere(settings, req, edge)
        if res.status != "ok":
            raise InputError(res.error or "featurize failed")
        if out_file is not None:
            out_file.parent.mkdir(parents=True, exist_ok=True)
            out_file.write_bytes(encode(res))
            out.print(f"wrote the answer to {out_file}")
        elif as_json:
            out.file.write(json.dumps(json.loads(encode(res)), indent=1) + "\n")
        else:
            print_result(res)
