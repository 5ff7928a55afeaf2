"""``gravitas catalog``: search any node's STAC API with pystac-client."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import orjson
import typer
from rich.table import Table

from gravitas.schemas.errors import RequestError, TransportError
from gravitas.streams.cli.common import DataOpt, out, settings_from
from gravitas.streams.stac import STAC_PREFIX
from gravitas.streams.transports.edge import discover_edge

catalog_app = typer.Typer(help="The node's STAC catalog.", no_args_is_help=True)


def _stac_url(url: str | None, data: DataOpt) -> str:
    if url:
        return url.rstrip("/")
    edge = discover_edge(settings_from(data=data).data_dir)
    return edge.rstrip("/") + STAC_PREFIX


@catalog_app.command("search")
def search(
    url: Annotated[
        str | None,
        typer.Option("--url", help="STAC API root (default: the local node's edge + /stac)."),
    ] = None,
    data: DataOpt = None,
    bbox: Annotated[
        str | None, typer.Option("--bbox", help="west,south,east,north in degrees.")
    ] = None,
    datetime: Annotated[
        str | None,
        typer.Option("--datetime", help="Instant or interval, e.g. 2017-01-01T00:00:00Z/.."),
    ] = None,
    collections: Annotated[
        str | None, typer.Option("--collections", help="Comma-separated collection ids.")
    ] = None,
    filter: Annotated[
        str | None, typer.Option("--filter", help='CQL2-text, e.g. "eo:cloud_cover < 10".')
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Most items to print.", min=1)] = 20,
    federated: Annotated[
        bool, typer.Option("--federated", help="Include items owned by other nodes.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print items as JSON lines.")] = False,
) -> None:
    """Search items on a node's STAC API and print a table.

    Example: gravitas catalog search --bbox 12.4,52.4,12.8,52.6 --filter "eo:cloud_cover < 10"
    """
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    root = _stac_url(url, data)
    box = None
    if bbox:
        try:
            box = [float(v) for v in bbox.split(",")]
        except ValueError as exc:
            raise RequestError(
                f"--bbox must be 4 numbers west,south,east,north, got {bbox!r}"
            ) from exc
    try:
        client = Client.open(root, parameters={"federated": "true"} if federated else None)
        found = client.search(
            bbox=box,
            datetime=datetime,
            collections=collections.split(",") if collections else None,
            filter=filter,
            filter_lang="cql2-text" if filter else None,
            max_items=limit,
            limit=min(limit, 100),
            method="GET",
        )
        items = list(found.items_as_dicts())
        matched = found.matched()
    except APIError as exc:
        raise RequestError(f"the STAC API at {root} refused the search: {exc}") from exc
    except OSError as exc:
        raise TransportError(f"cannot reach the STAC API at {root}: {exc}") from exc
    if as_json:
        for it in items:
            out.print(orjson.dumps(it).decode(), highlight=False, soft_wrap=True)
        return
    table = Table(
        title=f"{len(items)} of {matched if matched is not None else '?'} items at {root}"
    )
    for col in ("collection", "id", "datetime", "node", "bbox", "assets"):
        table.add_column(col)
    for it in items:
        props = it.get("properties", {})
        when = props.get("datetime") or f"{props.get('start_datetime')}/{props.get('end_datetime')}"
        box_txt = ",".join(f"{v:.3f}" for v in it.get("bbox", [])[:4])
        table.add_row(
            str(it.get("collection", "")),
            str(it["id"]),
            str(when),
            str(props.get("gravitas:node", "")),
            box_txt,
            str(len(it.get("assets", {}))),
        )
    out.print(table)


@catalog_app.command("collections")
def collections_cmd(
    url: Annotated[
        str | None,
        typer.Option("--url", help="STAC API root (default: the local node's edge + /stac)."),
    ] = None,
    data: DataOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print collections as JSON lines.")
    ] = False,
) -> None:
    """List a node's collections: extent, time span, bands and asset keys (they grow as
    items arrive).

    Example: gravitas catalog collections
    """
    import httpx

    root = _stac_url(url, data)
    try:
        resp = httpx.get(f"{root}/collections", timeout=30)
    except httpx.HTTPError as exc:
        raise TransportError(f"cannot reach the STAC API at {root}: {exc}") from exc
    if resp.status_code != 200:
        raise RequestError(f"GET {root}/collections answered {resp.status_code}: {resp.text[:200]}")
    colls = resp.json().get("collections", [])
    if as_json:
        for coll in colls:
            out.print(orjson.dumps(coll).decode(), highlight=False, soft_wrap=True)
        return
    table = Table(title=f"{len(colls)} collections at {root}")
    table.add_column("id", no_wrap=True)
    for col in ("bbox", "interval", "bands", "assets"):
        table.add_column(col)
    for coll in colls:
        extent = coll.get("extent", {})
        box = (extent.get("spatial", {}).get("bbox") or [[]])[0]
        span = (extent.get("temporal", {}).get("interval") or [[None, None]])[0]
        bands = coll.get("summaries", {}).get("eo:bands") or []
        table.add_row(
            str(coll.get("id", "")),
            ",".join(f"{v:.3f}" for v in box[:4]),
            "/".join(str(t or "..") for t in span[:2]),
            _few(str(b.get("name", "")) for b in bands if isinstance(b, dict)),
            _few(sorted(coll.get("item_assets", {}))),
        )
    out.print(table)


def _few(names: Iterable[str], most: int = 6) -> str:
    shown = list(names)
    more = f" +{len(shown) - most}" if len(shown) > most else ""
    return ",".join(shown[:most]) + more


def register(app: typer.Typer) -> None:
    """Add ``gravitas catalog`` to the CLI."""
    app.add_typer(catalog_app, name="catalog")
