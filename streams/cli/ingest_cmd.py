"""``gravitas ingest``: files or STAC items -> scenes -> the node's pixel store.

Files of one scene (one product name, one band per file: ``..._b3.tif ..._fmask.tif``,
``T33UUU_..._B04.jp2 ..._B08.jp2``) become ONE scene whose bands each become a layer
``<layer-name>_<band>``; a single band file still gets its band in the name, so two
commands never write two bands into one layer. Two files of one scene with the same band
are refused. Time comes from ``--datetime``, the file, or its standard product name;
``--mask`` applies a quality mask under a convention; ``--nodata`` marks fill values of
files without a nodata tag. A STAC item file (``item.json``) gives all of these itself.

With a node running on the data directory (``<data dir>/node.json``), the scenes go
through its edge, so the command never fights the node for its stores.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from gravitas.schemas.errors import GravitasError, InputError, TransportError
from gravitas.schemas.events import ItemRegistered, Rejected, SceneAnnounced
from gravitas.schemas.settings import Settings
from gravitas.storage.readers.masks import MASK_CONVENTIONS
from gravitas.storage.readers.names import band_of, mask_convention_of, product_time
from gravitas.storage.readers.stac_item import read_item_scenes
from gravitas.streams.cli.common import DataOpt, console, out, run, settings_from
from gravitas.streams.cli.local_node import running_edge

__all__ = ["mask_options", "parse_datetime", "parse_nodata", "plan_scenes", "register"]


def parse_datetime(text: str | None) -> datetime | None:
    """``--datetime``: ISO 8601 (``2020-01-14``, ``2020-01-14T10:21:01Z``), UTC if bare."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"--datetime must be ISO 8601 like 2020-01-14T10:21:01Z, got {text!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_nodata(text: str | None) -> float | None:
    """``--nodata``: a number or ``nan``."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"--nodata must be a number (or nan), got {text!r}") from None
    if math.isinf(value):
        raise InputError(f"--nodata must be finite, got {text!r}")
    return value


def _scene_id(text: str) -> str:
    sid = re.sub(r"[^A-Za-z0-9_.:-]", "_", text)[:190]
    return sid if sid[:1].isalnum() else f"s{sid}"


def _layer(text: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "_", text.lower()).strip("_")[:100] or "layer"


def _match_masks(masks: Sequence[Path], scenes: dict[str, list[Path]]) -> dict[str, Path]:
    """Which scene each ``--mask`` belongs to: the scene of its product name, or the only
    scene there is."""
    found: dict[str, Path] = {}
    for mask in masks:
        named = band_of(mask.name)
        key = named.scene if named is not None and named.scene in scenes else None
        if key is None and len(scenes) == 1:
            key = next(iter(scenes))
        if key is None:
            raise InputError(
                f"--mask {mask.name} does not belong to any of the scenes "
                f"{sorted(scenes)[:5]}; name it like its scene's files (<scene>_fmask.tif)"
            )
        if key in found:
            raise InputError(f"scene {key} got two masks: {found[key].name} and {mask.name}")
        found[key] = mask
    return found


def _convention(mask: Path, given: str | None) -> str:
    if given is not None:
        if given not in MASK_CONVENTIONS:
            raise InputError(
                f"--mask-convention {given!r} is not one of {', '.join(MASK_CONVENTIONS)}"
            )
        return given
    named = band_of(mask.name)
    conv = mask_convention_of(named.band, named.scene) if named else None
    if conv is None:
        raise InputError(
            f"cannot tell the convention of mask {mask.name}; say --mask-convention "
            f"({', '.join(MASK_CONVENTIONS)})"
        )
    return conv


def mask_options(mask: str | None, convention: str | None) -> tuple[str | None, Any]:
    """``--mask`` / ``--mask-convention`` of ``register``: the mask's href (a local file
    is resolved) and its convention."""
    if mask is None:
        if convention is not None:
            raise InputError("--mask-convention needs --mask FILE")
        return None, "fmask"
    from urllib.parse import urlparse

    if urlparse(mask).scheme in ("http", "https", "s3", "file"):
        return mask, _convention(Path(urlparse(mask).path), convention)
    path = Path(mask).resolve()
    if not path.is_file():
        raise InputError(f"--mask {mask} is not a file")
    return str(path), _convention(path, convention)


def plan_scenes(
    files: Sequence[Path],
    *,
    collection: str | None = None,
    layer: str | None = None,
    categorical: bool = False,
    when: datetime | None = None,
    nodata: float | None = None,
    masks: Sequence[Path] = (),
    mask_convention: str | None = None,
    mask_band: str | None = None,
) -> list[SceneAnnounced]:
    """The scenes the files make, one :class:`SceneAnnounced` each (nothing is read but
    STAC item JSON). ``mask_band`` names the band of each scene that is its mask (e.g.
    ``fmask``): it is applied to the scene's other bands and kept as a layer itself."""
    if mask_convention is not None and not masks and mask_band is None:
        raise InputError("--mask-convention needs --mask FILE or --mask-band BAND")
    events: list[SceneAnnounced] = []
    scenes: dict[str, list[Path]] = {}
    for f in files:
        if f.suffix.lower() == ".json":
            events.extend(_item_events(f, collection, layer, categorical, when, nodata))
            continue
        named = band_of(f.name)
        key = named.scene if named is not None else f"\0{f}"
        scenes.setdefault(key, []).append(f)
    mask_of = _match_masks(masks, scenes) if masks else {}
    if mask_band is not None:
        wanted = mask_band.lower()
        for key, group in scenes.items():
            hit = [f for f in group if (b := band_of(f.name)) is not None and b.band == wanted]
            if not hit:
                raise InputError(
                    f"--mask-band {mask_band}: scene {key.lstrip(chr(0))} has no {wanted} file "
                    f"among {[f.name for f in group][:6]}"
                )
            if key in mask_of:
                raise InputError(f"scene {key} got both --mask and --mask-band")
            mask_of[key] = hit[0]
    coll = collection or "local"
    prefix = _layer(layer or coll.replace(":", "_"))
    for key, group in scenes.items():
        bands: list[str] = []
        for f in group:
            named = band_of(f.name)
            if named is None:
                continue
            if named.band in bands:
                other = group[bands.index(named.band)]
                raise InputError(
                    f"{other.name} and {f.name} are both band {named.band!r} of scene "
                    f"{key}; ingest them separately or rename one"
                )
            bands.append(named.band)
        scene_name = group[0].stem if key.startswith("\0") else key
        stamp = when or product_time(scene_name) or product_time(group[0].name)
        mask = mask_of.get(key)
        single_band = len(group) == 1 and bands
        events.append(
            _announce(
                scene_name,
                scene_id=_scene_id(scene_name),
                collection=coll,
                hrefs=[str(f) for f in group],
                layer=_layer(f"{prefix}_{bands[0]}") if single_band else prefix,
                band_names=bands if len(bands) == len(group) else None,
                categorical=categorical,
                datetime=stamp,
                nodata=nodata,
                mask_href=str(mask) if mask else None,
                mask_convention=_convention(mask, mask_convention) if mask else "fmask",  # type: ignore[arg-type]
            )
        )
    return events


def _announce(where: str, **fields: Any) -> SceneAnnounced:
    """A :class:`SceneAnnounced`, or one line naming what is wrong with it."""
    try:
        return SceneAnnounced(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "scene"
        raise InputError(f"{where}: {field}: {err['msg']}") from None


def _item_events(
    path: Path,
    collection: str | None,
    layer: str | None,
    categorical: bool,
    when: datetime | None,
    nodata: float | None,
) -> list[SceneAnnounced]:
    out_events = []
    for sc in read_item_scenes(path):
        coll = collection or sc.collection or "local"
        out_events.append(
            _announce(
                str(path),
                scene_id=sc.scene_id,
                collection=coll,
                hrefs=[str(h) for h in sc.hrefs],
                bbox=sc.bbox,
                layer=_layer(layer or coll.replace(":", "_")),
                band_names=sc.band_names,
                band_nodata=sc.band_nodata,
                nodata=nodata,
                categorical=categorical,
                datetime=when or sc.datetime,
                mask_href=str(sc.mask) if sc.mask else None,
                mask_convention=sc.mask_convention or "fmask",  # type: ignore[arg-type]
                properties=sc.properties,
            )
        )
    return out_events


async def ingest_via_edge(
    settings: Settings, url: str, events: list[SceneAnnounced], timeout: float
) -> tuple[list[str], list[str]]:
    """Publish the scenes to the running node's edge; wait until each is registered or
    rejected. Returns (registered scene ids, rejection lines)."""
    from gravitas.schemas.codec import decode
    from gravitas.streams.client import Client

    want = {e.scene_id for e in events}
    done: list[str] = []
    errors: list[str] = []
    queue: asyncio.Queue[Any] = asyncio.Queue()
    async with Client("memory://", edge_url=url, data_dir=settings.data_dir) as client:

        async def watch(sub: Any, topic: str) -> None:
            types = client.topology.events(topic)
            async for rec in sub:
                try:
                    await queue.put(decode(rec.value, types))
                except GravitasError:
                    continue

        tr = client.transport
        async with (
            tr.subscription("stac.registrations") as regs,
            tr.subscription("deadletter") as dead,
        ):
            tasks = [asyncio.create_task(watch(regs, "stac.registrations")),
                     asyncio.create_task(watch(dead, "deadletter"))]  # fmt: skip
            try:
                for ev in events:
                    await client.publish(ev)
                async with asyncio.timeout(timeout):
                    while want:
                        got = await queue.get()
                        if isinstance(got, ItemRegistered) and got.item_id in want:
                            want.discard(got.item_id)
                            done.append(got.item_id)
                        elif isinstance(got, Rejected) and got.source_key in want:
                            want.discard(got.source_key)
                            errors.append(f"{got.source_key}: {got.error_class}: {got.reason}")
            except TimeoutError:
                raise TransportError(
                    f"the node at {url} did not finish {sorted(want)[:5]} within {timeout:g} s; "
                    "see `gravitas tail deadletter`"
                ) from None
            finally:
                for t in tasks:
                    t.cancel()
    return done, errors


def register(app: typer.Typer) -> None:
    """Add ``ingest``."""

    @app.command("ingest")
    def ingest(
        paths: Annotated[
            list[Path],
            typer.Argument(help="Raster files (GeoTIFF, JP2, NetCDF, GRIB) or STAC item JSON."),
        ],
        collection: Annotated[
            str | None,
            typer.Option(
                "--collection", "-c", help="Collection id (default: the item's, or local)."
            ),
        ] = None,
        layer_name: Annotated[
            str | None,
            typer.Option("--layer-name", "-l", help="Layer name prefix: <prefix>_<band>."),
        ] = None,
        when: Annotated[
            str | None,
            typer.Option(
                "--datetime", help="Acquisition time (ISO 8601, UTC) for files without one."
            ),
        ] = None,
        mask: Annotated[
            list[Path] | None,
            typer.Option(
                "--mask", help="Quality mask of a scene (e.g. its Fmask file); repeatable."
            ),
        ] = None,
        mask_band: Annotated[
            str | None,
            typer.Option("--mask-band", help="Band of each scene that is its mask (e.g. fmask)."),
        ] = None,
        mask_convention: Annotated[
            str | None,
            typer.Option(
                "--mask-convention",
                help=f"How the mask is read: {', '.join(MASK_CONVENTIONS)} (default: by name).",
            ),
        ] = None,
        nodata: Annotated[
            str | None,
            typer.Option(
                "--nodata", help="Fill value of files without a nodata tag (number or nan)."
            ),
        ] = None,
        categorical: Annotated[bool, typer.Option(help="Nearest resampling (labels).")] = False,
        timeout: Annotated[float, typer.Option(help="Seconds to wait for a running node.")] = 600.0,
        data: DataOpt = None,
    ) -> None:
        """Index files into the node's pixel store: one layer per band, one scene per product.

        Example: gravitas ingest ./lsts/LE7*/*.tif --collection landsat --layer-name ls --mask-band fmask
        """  # noqa: E501
        files = [p.resolve() for p in paths]
        masks = [m.resolve() for m in mask or []]
        for f in [*files, *masks]:
            if not f.is_file():
                raise InputError(f"{f} is not a file")
        events = plan_scenes(
            files,
            collection=collection,
            layer=layer_name,
            categorical=categorical,
            when=parse_datetime(when),
            nodata=parse_nodata(nodata),
            masks=masks,
            mask_convention=mask_convention,
            mask_band=mask_band,
        )
        roots = sorted(
            {
                Path(h).parent
                for e in events
                for h in [*e.hrefs, *([e.mask_href] if e.mask_href else [])]
            }
        )
        settings = settings_from(data=data, allowed_roots=tuple(roots), http_port=0)
        url = running_edge(settings.data_dir)
        if url is not None:
            console.print(f"a node is running on {settings.data_dir}: ingesting through {url}")
            done, errors = run(ingest_via_edge(settings, url, events, timeout))
            summary = f"registered {len(done)} scene(s) on the node at {url}"
        else:
            from gravitas.streams.cli.pixels_cmd import ingest_events

            families, errors = run(ingest_events(settings, events))
            summary = f"indexed {families} block families into {settings.data_dir}"
        for e in errors:
            console.print(f"[red]rejected[/] {e}", highlight=False)
        out.print(summary)
        if errors:
            raise typer.Exit(1)
