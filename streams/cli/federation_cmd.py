"""``gravitas register`` (the three data modes) and ``gravitas nodes`` (the federation)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlparse

import httpx
import typer
from rich.table import Table

from gravitas.schemas.errors import InputError, TransportError
from gravitas.schemas.events import ItemRegistered, SceneAnnounced
from gravitas.streams.cli.common import BrokerOpt, DataOpt, EdgeOpt, console, out, settings_from
from gravitas.streams.client import Client
from gravitas.streams.transports.edge import discover_edge


def _file_extent(path: Path) -> tuple[tuple[float, float, float, float], datetime | None]:
    """bbox (EPSG:4326) and datetime of a local file, read here so a lazy announcement
    can be registered without the node reading the file."""
    from gravitas.storage.catalog.errors import ItemBuildError
    from gravitas.storage.catalog.items import item_from_file

    try:
        item = item_from_file(path, "probe", "probe", checksum=False)
    except ItemBuildError:
        if path.suffix.lower() not in (".nc", ".nc4"):
            raise
        from gravitas.storage.readers.emit_extent import emit_extent

        return emit_extent(path)  # an EMIT L1B radiance: its location group
    w, s, e, n = item.bbox[:4] if item.bbox else (-180.0, -90.0, 180.0, 90.0)
    return (w, s, e, n), item.datetime


def register_scene(
    paths: Annotated[
        list[str], typer.Argument(help="Files (or http(s) URLs for external) of one scene.")
    ],
    collection: Annotated[str, typer.Option("--collection", "-c", help="STAC collection id.")],
    mode: Annotated[
        Literal["direct", "external", "lazy"],
        typer.Option("--mode", "-m", help="direct | external | lazy"),
    ] = "direct",
    scene_id: Annotated[
        str | None, typer.Option("--scene-id", help="Default: the first file's stem.")
    ] = None,
    layer: Annotated[str | None, typer.Option("--layer", help="Pixel layer name prefix.")] = None,
    when: Annotated[
        datetime | None,
        typer.Option("--datetime", help="Acquisition time (UTC) if the file has none."),
    ] = None,
    mask: Annotated[
        str | None, typer.Option("--mask", help="Quality mask file of the scene (e.g. Fmask).")
    ] = None,
    mask_convention: Annotated[
        str | None,
        typer.Option(
            "--mask-convention",
            help="fmask, qa_pixel, hls_fmask, scl, valid_nonzero, "
            "valid_zero (default: from the mask's name).",
        ),
    ] = None,
    nodata: Annotated[
        str | None, typer.Option("--nodata", help="Fill value of files without a nodata tag.")
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait/--no-wait", help="Wait for the registration on stac.registrations."),
    ] = True,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 300.0,
    broker: BrokerOpt = None,
    data: DataOpt = None,
    edge: EdgeOpt = None,
) -> None:
    """Register a scene on a node: direct (copy + index), external (reference), lazy (on first use).

    Example: gravitas register ./T33UUU_B04.jp2 --mode lazy --collection sentinel-2-l1c
    """
    settings = settings_from(broker, data)
    hrefs: list[str] = []
    for p in paths:
        if urlparse(p).scheme in ("http", "https", "s3", "file"):
            hrefs.append(p)
        else:
            path = Path(p).resolve()
            if not path.is_file():
                raise InputError(f"{p} is not a file")
            hrefs.append(str(path))
    bbox = None
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    first = Path(hrefs[0])
    if urlparse(hrefs[0]).scheme == "" and first.is_file():
        bbox, file_time = _file_extent(first)
        when = when or file_time
    sid = scene_id or Path(urlparse(hrefs[0]).path).stem.replace(" ", "_")
    from gravitas.streams.cli.ingest_cmd import mask_options, parse_nodata

    mask_href, convention = mask_options(mask, mask_convention)
    event = SceneAnnounced(
        scene_id=sid,
        collection=collection,
        hrefs=hrefs,
        mode=mode,
        layer=layer,
        bbox=bbox,
        datetime=when,
        node_id=settings.node_id,
        mask_href=mask_href,
        mask_convention=convention,
        nodata=parse_nodata(nodata),
    )

    async def go() -> None:
        async with Client(settings.broker, edge_url=edge, data_dir=settings.data_dir) as client:
            if not wait:
                await client.publish(event)
                return

            def registered(ev: object) -> bool:
                if not (isinstance(ev, ItemRegistered) and ev.item_id == sid):
                    return False
                # direct: its pixels are searchable once the overview agent flags it onboarded
                props = ev.item.get("properties", {})
                return mode != "direct" or bool(props.get("gravitas:onboarded"))

            with console.status(f"waiting for {sid} to be registered ({mode}) ..."):
                reg = await client.publish_and_wait(
                    event,
                    "stac.registrations",
                    registered,
                    timeout,
                    what=f"registration of {sid}",
                )
            assert isinstance(reg, ItemRegistered)
            props = reg.item.get("properties", {})
            out.print(
                f"registered [bold]{reg.collection}/{reg.item_id}[/] v{reg.version} on node "
                f"{reg.owning_node} (mode {props.get('gravitas:mode')}, onboarded "
                f"{props.get('gravitas:onboarded')})",
                soft_wrap=True,
            )
            for key, asset in reg.item.get("assets", {}).items():
                out.print(f"  {key}: {asset.get('href')}", highlight=False, soft_wrap=True)

    asyncio.run(go())


def nodes(
    data: DataOpt = None,
    edge: EdgeOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the federation's nodes as this node knows them: items, last seen.

    Example: gravitas nodes --edge http://127.0.0.1:8765
    """
    settings = settings_from(None, data)
    url = edge or discover_edge(settings.data_dir)
    try:
        resp = httpx.get(f"{url.rstrip('/')}/federation/nodes", timeout=30)
        resp.raise_for_status()
    except httpx.HTTPError as exc:
        raise TransportError(f"cannot reach the node's edge at {url}: {exc}") from exc
    body = resp.json()
    if as_json:
        out.print(resp.text, highlight=False, soft_wrap=True)
        return
    table = Table(
        "node",
        "trusted",
        "api",
        "items",
        "registrations",
        "last seen",
        "public key",
        title=f"seen from {body['node_id']}",
    )
    for row in body["nodes"]:
        seen = row["last_seen"]
        stamp = datetime.fromtimestamp(seen).isoformat(timespec="seconds") if seen else "-"
        name = row["node_id"] + (" (this node)" if row["self"] else "")
        trusted = "self" if row["self"] else ("peer" if row.get("peer") else "no")
        table.add_row(
            name,
            trusted,
            row["api_url"],
            str(row["items"]),
            str(row["registrations"]),
            stamp,
            row.get("public_key", ""),
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add the commands to the app."""
    app.command("register")(register_scene)
    app.command()(nodes)
