"""``gravitas search | layers | quicklook``: the raster pixel store from the shell
(``ingest`` is in :mod:`gravitas.streams.cli.ingest_cmd`).

They run on the node's data dir: through the running node when there is one, else with
an embedded node in this process (no broker).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from pydantic import ValidationError
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gravitas.schemas.common import TimeRange
from gravitas.schemas.errors import InputError
from gravitas.schemas.events import PixelSearch, Predicate, SceneAnnounced, SearchResult
from gravitas.schemas.settings import Settings
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

WORLD = (-180.0, -90.0, 180.0, 90.0)


def parse_bbox(text: str | None) -> tuple[float, float, float, float]:
    """``W,S,E,N`` -> tuple (the whole world when empty)."""
    if not text:
        return WORLD
    parts = text.split(",")
    if len(parts) != 4:
        raise InputError(f"--bbox must be W,S,E,N (4 numbers), got {text!r}")
    try:
        w, s, e, n = (float(p) for p in parts)
    except ValueError:
        raise InputError(f"--bbox must be 4 numbers W,S,E,N, got {text!r}") from None
    return w, s, e, n


def parse_time(text: str | None) -> TimeRange:
    """``T0/T1`` (ISO dates or datetimes, UTC) -> TimeRange (all time when empty)."""
    if not text:
        return TimeRange(
            start=datetime(1900, 1, 1, tzinfo=UTC), end=datetime(2100, 1, 1, tzinfo=UTC)
        )
    try:
        a, b = text.split("/")
        t0, t1 = (datetime.fromisoformat(x) for x in (a, b))
    except ValueError:
        raise InputError(f"--time must be T0/T1 in ISO format, got {text!r}") from None
    t0 = t0 if t0.tzinfo else t0.replace(tzinfo=UTC)
    t1 = t1 if t1.tzinfo else t1.replace(tzinfo=UTC)
    return TimeRange(start=t0, end=t1)


def parse_predicate(text: str) -> Predicate:
    """``'value > 50'``, ``'>= 3'``, ``'between 1 5'`` -> Predicate."""
    tokens = text.replace("value", " ").split()
    ops = (">=", "<=", ">", "<", "between")
    if not tokens or tokens[0] not in ops:
        raise InputError(f"predicate must look like 'value > 50' or 'between 1 5', got {text!r}")
    try:
        nums = [float(t) for t in tokens[1:]]
    except ValueError:
        raise InputError(f"predicate {text!r} needs numbers after the operator") from None
    if tokens[0] == "between" and len(nums) == 2:
        return Predicate(op="between", value=nums[0], high=nums[1])
    if len(nums) != 1:
        raise InputError(f"predicate {text!r}: give one number (two for 'between')")
    return Predicate(op=tokens[0], value=nums[0])  # type: ignore[arg-type]


def progress_bar() -> Progress:
    """The rich progress bar used by long commands."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    )


async def ingest_events(
    settings: Settings, events: list[SceneAnnounced], label: str = "ingest"
) -> tuple[int, list[str]]:
    """Publish scenes to an embedded node, wait for ingest + overviews; (families, errors)."""
    from gravitas.schemas.events import Rejected
    from gravitas.streams.node import EmbeddedNode

    families = 0
    errors: list[str] = []
    async with EmbeddedNode(settings, serve_http=False) as node:
        client = node.client()
        with progress_bar() as bar:
            task = bar.add_task(label, total=len(events))
            for ev in events:
                await client.publish(ev)
                await node.runner.drain(timeout=600)
                bar.advance(task)
        for topic in ("pixels.indexed", "deadletter"):
            for rec in _records(node, topic):
                if isinstance(rec, Rejected):
                    errors.append(f"{rec.source_key}: {rec.error_class}: {rec.reason}")
                else:
                    families += 1
    return families, errors


def _records(node: object, topic: str) -> list[object]:
    from gravitas.schemas.codec import decode

    bus = node.bus  # type: ignore[attr-defined]
    topology = node.topology  # type: ignore[attr-defined]
    name = topology.physical(topic)
    outs: list[object] = []
    for p in range(bus.partitions(name)):
        for rec in bus.read(name, p, 0, 1_000_000):
            outs.append(decode(rec.value, topology.events(topic)))
    return outs


async def search_embedded(settings: Settings, req: PixelSearch) -> SearchResult:
    """Run one PixelSearch through an embedded node's discovery agent."""
    from gravitas.streams.node import EmbeddedNode

    async with EmbeddedNode(settings, serve_http=False) as node:
        reply = await node.client().request(req, req.reply_topic, timeout=600)
    assert isinstance(reply, SearchResult)
    return reply


async def search_running(settings: Settings, req: PixelSearch, edge: str | None) -> SearchResult:
    """Send one PixelSearch to a running node (its edge, or the Kafka broker)."""
    from gravitas.streams.client import Client

    async with Client(settings.broker, edge_url=edge, data_dir=settings.data_dir) as client:
        reply = await client.request(req, req.reply_topic, timeout=600)
    assert isinstance(reply, SearchResult)
    return reply


def search_anywhere(settings: Settings, req: PixelSearch, edge: str | None) -> SearchResult:
    """A running node answers when there is one (Kafka, --edge, or node.json in the data
    dir); otherwise an embedded node is started on the data dir for this one search."""
    from gravitas.streams.transports.edge import NODE_FILE

    running = not settings.is_memory or edge or (settings.data_dir / NODE_FILE).exists()
    if running:
        return run(search_running(settings, req, edge))
    existing_data_dir(settings)  # an embedded node would create it, empty
    return run(search_embedded(settings, req))


def print_result(res: SearchResult, limit: int = 20) -> None:
    """A rich table of matches plus counts per time step."""
    if res.status != "ok":
        raise InputError(res.error or "search failed")
    table = Table(
        title=f"{res.total_matches} matching pixels (showing {min(limit, len(res.matches))})"
    )
    for col in ("lon", "lat", "time", "value"):
        table.add_column(col, justify="right")
    for m in sorted(res.matches, key=lambda m: -m.value)[:limit]:
        table.add_row(f"{m.lon:.4f}", f"{m.lat:.4f}", m.time.isoformat(), f"{m.value:.2f}")
    out.print(table)
    counts = Table(title="matches per time step")
    counts.add_column("time")
    counts.add_column("matches", justify="right")
    for t, n in res.counts_per_time.items():
        if n:
            counts.add_row(t, str(n))
    out.print(counts)
    out.print(f"blocks read {res.blocks_read} of {res.blocks_total}")


def render_quicklook(
    settings: Settings, layer: str, bbox: tuple[float, float, float, float], time: TimeRange,
    path: Path, max_px: int = 1024, reduce: str = "max",
) -> Path:  # fmt: skip
    """A map figure of a layer over ``bbox`` (the whole world: where the layer has data)
    and ``time``, read from the coarsest overview level that still gives about
    ``max_px`` pixels across (see :mod:`gravitas.streams.cli.quicklook`)."""
    from gravitas.streams.cli.quicklook import layer_quicklook

    box = None if bbox == WORLD else bbox
    return layer_quicklook(settings, layer, box, time, path, reduce=reduce, max_px=max_px).path


def _layer_bbox(
    services: object, layer: str, t0: datetime | None = None, t1: datetime | None = None
) -> tuple[float, float, float, float]:
    """Bounds of a layer's native blocks in ``[t0, t1]`` (default: all its times)."""
    from gravitas.kernels.grid import block_bounds
    from gravitas.kernels.morton import morton_decode
    from gravitas.storage.keys import decode_key, key_range, to_epoch

    info = services.layers.get(layer)  # type: ignore[attr-defined]
    times = services.layers.times(layer)  # type: ignore[attr-defined]
    lo_t = max(times[0], to_epoch(t0)) if t0 is not None else times[0]
    hi_t = min(times[-1], to_epoch(t1)) if t1 is not None else times[-1]
    if hi_t < lo_t:
        raise InputError(f"layer {layer} has no data in {t0}..{t1}")
    lo, hi = key_range(layer, info.native_level, lo_t, hi_t)
    codes = [
        k.morton
        for k in map(decode_key, services.block_store.scan_keys(lo, hi))  # type: ignore[attr-defined]
        if lo_t <= k.timestamp <= hi_t
    ]
    if not codes:
        raise InputError(f"layer {layer} has no blocks in {t0}..{t1}")
    bx, by = morton_decode(np.asarray(codes, np.uint64))
    corners = [  # block rows count from the north, so take min/max of both corners
        block_bounds(info.native_level, int(x), int(y))
        for x, y in ((bx.min(), by.min()), (bx.max(), by.max()))
    ]
    w, e = min(c[0] for c in corners), max(c[2] for c in corners)
    s, n = min(c[1] for c in corners), max(c[3] for c in corners)
    return max(w, -180.0), max(s, -90.0), min(e, 180.0), min(n, 90.0)


def register(app: typer.Typer) -> None:
    """Add the pixel-store commands."""

    @app.command("search")
    def search(
        layer: Annotated[str, typer.Argument(help="Layer name (see gravitas layers).")],
        predicate: Annotated[str, typer.Argument(help="'value > 50', '<= 3', 'between 1 5'.")],
        bbox: Annotated[str | None, typer.Option(help="W,S,E,N in degrees.")] = None,
        time: Annotated[str | None, typer.Option(help="T0/T1 (ISO, UTC).")] = None,
        level: Annotated[int | None, typer.Option(help="Grid level (default native).")] = None,
        limit: Annotated[int, typer.Option(help="Matches to return.")] = 10_000,
        as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
        as_csv: Annotated[bool, typer.Option("--csv", help="lon,lat,time,value rows.")] = False,
        as_geojson: Annotated[
            bool, typer.Option("--geojson", help="A GeoJSON FeatureCollection of points.")
        ] = False,
        out_file: Annotated[
            Path | None, typer.Option("--out", help="Write the answer to this file.")
        ] = None,
        data: DataOpt = None,
        broker: BrokerOpt = None,
        edge: EdgeOpt = None,
    ) -> None:
        """Find pixels by value (pruned by the overview pyramid), on the running node if
        there is one, else on an embedded node over --data.

        Example: gravitas search stageiv "> 50" --bbox -81,32,-74,38 --time 2018-09-13/2018-09-16
        """
        from gravitas.streams.cli.search_output import render

        flags = (("json", as_json), ("csv", as_csv), ("geojson", as_geojson))
        chosen = [name for name, on in flags if on]
        if len(chosen) > 1:
            raise InputError(f"choose one of --json, --csv, --geojson, got {', '.join(chosen)}")
        if out_file is not None and not chosen:
            chosen = [_format_for(out_file)]
        try:
            req = PixelSearch(
                request_id=f"cli-{uuid.uuid4().hex[:10]}",
                layer=layer,
                predicate=parse_predicate(predicate),
                bbox=parse_bbox(bbox),
                time=parse_time(time),
                level=level,
                limit=limit,
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"][:1]) or "request"
            raise InputError(f"--{where}: {err['msg']}") from None
        settings = settings_from(broker, data, http_port=0)
        res = search_anywhere(settings, req, edge)
        if not chosen:
            print_result(res)
            return
        if res.status != "ok":
            raise InputError(res.error or "search failed")
        text = render(res, chosen[0], layer)  # type: ignore[arg-type]
        if out_file is None:
            out.file.write(text)
            return
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(text)
        out.print(f"wrote {len(res.matches)} matches to {out_file}")

    @app.command("layers")
    def layers(data: DataOpt = None) -> None:
        """List the indexed layers: levels, time range, block counts.

        Example: gravitas layers --data ./node
        """
        from gravitas.storage.pixels import LayerRegistry

        settings = settings_from(data=data)
        existing_data_dir(settings)
        table = Table(title=f"layers in {settings.data_dir}")
        for col in ("layer", "dtype", "native", "top", "times", "first", "last", "blocks"):
            table.add_column(col)
        for i in LayerRegistry(settings.data_dir / "layers.sqlite").list():
            table.add_row(
                i.name, i.dtype, str(i.native_level), str(i.top_level), str(i.times),
                i.t_min.isoformat() if i.t_min else "", i.t_max.isoformat() if i.t_max else "",
                str(i.blocks),
            )  # fmt: skip
        out.print(table)

    @app.command("quicklook")
    def quicklook(
        layer: Annotated[str, typer.Argument(help="Layer name.")],
        out_path: Annotated[Path, typer.Option("--out", help="PNG file to write.")],
        bbox: Annotated[str | None, typer.Option(help="W,S,E,N (default: the layer).")] = None,
        time: Annotated[str | None, typer.Option(help="T0/T1 (default: all times).")] = None,
        reduce: Annotated[
            str, typer.Option(help="Several time steps: max, mean, min, sum or last.")
        ] = "max",
        data: DataOpt = None,
    ) -> None:
        """Draw a map figure (PNG) of a layer from its overviews: lon/lat axes, country
        outlines, title with place and time, colour bar with units (classes: a legend).

        Example: gravitas quicklook stageiv --time 2018-09-13/2018-09-15 --out rain.png
        """
        settings = settings_from(data=data)
        existing_data_dir(settings)
        p = render_quicklook(
            settings, layer, parse_bbox(bbox), parse_time(time), out_path, reduce=reduce
        )
        out.print(f"wrote {p}")


def _format_for(path: Path) -> str:
    """The output format a file name asks for (--out rain.csv -> csv)."""
    suffix = path.suffix.lower().lstrip(".")
    known = {"json": "json", "csv": "csv", "geojson": "geojson"}
    if suffix not in known:
        raise InputError(
            f"--out {path}: name a .json, .csv or .geojson file, or add --json/--csv/--geojson"
        )
    return known[suffix]
