"""A scene from a STAC item: its raster assets with their bands, time, fill values and
quality mask, ready for a :class:`~gravitas.schemas.events.SceneAnnounced`.

Assets with role ``data`` in a raster media type become bands named by their asset key
(``red``, ``nir08``, ``B04``); a quality asset with a known convention (``fmask``,
``qa_pixel``, ``scl``, by key or band name) becomes the scene's mask and a categorical
layer of its own. ``raster:bands`` gives each asset's nodata. Thumbnails, overviews and
metadata are skipped. Asset hrefs must be local files inside the item's folder (or an
allowed root): ingest reads local files only, and an item never sends it elsewhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import orjson

from gravitas.schemas.errors import InputError, UnsafePathError
from gravitas.storage.readers.names import band_of, mask_convention_of

__all__ = ["MAX_ITEM_BYTES", "ItemScene", "read_item_scenes"]

MAX_ITEM_BYTES = 16 * 1024 * 1024
_RASTER_TYPES = ("image/tiff", "image/vnd.stac.geotiff", "image/jp2", "application/x-netcdf",
                 "application/netcdf", "application/x-hdf5", "application/wmo-grib")  # fmt: skip
_RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".nc", ".nc4", ".grib", ".grib2", ".grb", ".grb2")
_SKIP_ROLES = {"thumbnail", "overview", "metadata", "tiles", "visual"}
_MASK_ROLES = {"cloud", "cloud-shadow", "snow-ice", "water-mask", "data-mask", "quality", "mask"}
_KEEP_PROPS = re.compile(r"^(platform|constellation|instruments|mission|gsd|eo:cloud_cover|"
                         r"view:[a-z_]+|landsat:[a-z_]+|s2:[a-z_]+|sat:[a-z_]+|proj:epsg|"
                         r"proj:code)$")  # fmt: skip
_BAND = re.compile(r"[^a-z0-9_.-]+")


@dataclass
class ItemScene:
    """What one STAC item says about a scene to index."""

    scene_id: str
    collection: str | None
    datetime: datetime
    hrefs: list[Path]
    band_names: list[str]
    band_nodata: list[float | None]
    bbox: tuple[float, float, float, float] | None = None
    mask: Path | None = None
    mask_convention: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


def _load(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_ITEM_BYTES:
            raise InputError(f"{path}: larger than {MAX_ITEM_BYTES} bytes; not a STAC item")
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); give a STAC item file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc}") from None


def read_item_scenes(path: Path, roots: Sequence[Path] = ()) -> list[ItemScene]:
    """The scenes of a STAC item file (a Feature, or a FeatureCollection of items)."""
    doc = _load(path)
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        feats = doc.get("features")
        if not isinstance(feats, list) or not feats:
            raise InputError(f"{path}: a FeatureCollection with no features")
        return [_scene(path, f, roots) for f in feats]
    return [_scene(path, doc, roots)]


def _scene(path: Path, item: Any, roots: Sequence[Path]) -> ItemScene:
    if not isinstance(item, dict) or item.get("type") != "Feature" or "stac_version" not in item:
        raise InputError(f"{path}: not a STAC item (no type Feature / stac_version)")
    item_id = item.get("id")
    if not isinstance(item_id, str) or not re.fullmatch(
        r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}", item_id
    ):
        raise InputError(f"{path}: item id {item_id!r} is not a valid scene id")
    props = item.get("properties")
    if not isinstance(props, dict):
        raise InputError(f"{path}: item {item_id} has no properties")
    when = _item_time(path, item_id, props)
    assets = item.get("assets")
    if not isinstance(assets, dict) or not assets:
        raise InputError(f"{path}: item {item_id} has no assets")
    allowed = [path.parent.resolve(), *(Path(r).resolve() for r in roots)]
    hrefs: list[Path] = []
    names: list[str] = []
    nodata: list[float | None] = []
    mask: Path | None = None
    convention: str | None = None
    for key, asset in assets.items():
        if not isinstance(asset, dict) or not isinstance(asset.get("href"), str):
            raise InputError(f"{path}: asset {key!r} of item {item_id} has no href")
        roles = {str(r) for r in asset.get("roles") or []}
        if not _is_raster(asset) or (roles & _SKIP_ROLES and "data" not in roles):
            continue
        band = _band_name(str(key), asset)
        mask_conv = mask_convention_of(band) or mask_convention_of(str(key).lower())
        is_mask = mask_conv is not None and (bool(roles & _MASK_ROLES) or "data" in roles)
        if not is_mask and "data" not in roles:
            continue
        local = _local(path, item_id, str(key), asset["href"], allowed)
        hrefs.append(local)
        names.append(band)
        nodata.append(_asset_nodata(path, str(key), asset))
        if is_mask and mask is None:
            mask, convention = local, mask_conv
    if not hrefs:
        raise InputError(
            f"{path}: item {item_id} has no raster asset with role 'data' (image/tiff, jp2, "
            "netcdf, grib) to ingest"
        )
    collection = item.get("collection")
    return ItemScene(
        scene_id=item_id,
        collection=collection if isinstance(collection, str) else None,
        datetime=when,
        hrefs=hrefs,
        band_names=names,
        band_nodata=nodata,
        bbox=_bbox(item.get("bbox")),
        mask=mask,
        mask_convention=convention,
        properties={k: v for k, v in props.items() if _KEEP_PROPS.match(k)},
    )


def _item_time(path: Path, item_id: str, props: dict[str, Any]) -> datetime:
    for name in ("datetime", "start_datetime"):
        value = props.get(name)
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise InputError(
                    f"{path}: item {item_id} has {name} {value!r}, not RFC 3339"
                ) from None
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    raise InputError(f"{path}: item {item_id} has no datetime or start_datetime")


def _is_raster(asset: dict[str, Any]) -> bool:
    media = str(asset.get("type") or "").lower()
    if media:
        return media.startswith(_RASTER_TYPES)
    return urlparse(str(asset["href"])).path.lower().endswith(_RASTER_SUFFIXES)


def _band_name(key: str, asset: dict[str, Any]) -> str:
    name = _BAND.sub("_", key.lower()).strip("_")
    if not name:
        bands = asset.get("eo:bands") or []
        name = str(bands[0].get("name", "")).lower() if bands else ""
    if not name:
        named = band_of(str(asset.get("href", "")))
        name = named.band if named else "band"
    return name[:50] if name[:1].isalnum() else f"b{name[:49]}"


def _asset_nodata(path: Path, key: str, asset: dict[str, Any]) -> float | None:
    bands = asset.get("raster:bands")
    if not isinstance(bands, list) or not bands or not isinstance(bands[0], dict):
        return None
    values = {b.get("nodata") for b in bands if isinstance(b, dict)}
    if len(values) != 1:
        raise InputError(
            f"{path}: asset {key!r} declares different nodata per band {sorted(map(str, values))}"
            "; split it into single-band assets"
        )
    value = values.pop()
    if value is None:
        return None
    if value == "nan":
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isinf(value):
        raise InputError(f"{path}: asset {key!r} has raster:bands nodata {value!r}; not a number")
    return float(value)


def _local(path: Path, item_id: str, key: str, href: str, allowed: Sequence[Path]) -> Path:
    parsed = urlparse(href)
    if parsed.scheme not in ("", "file"):
        raise InputError(
            f"{path}: asset {key!r} of item {item_id} is remote ({href}); `gravitas ingest` "
            "reads local files: download the assets next to the item, or register the "
            "item's files with `gravitas register --mode external`"
        )
    raw = unquote(parsed.path if parsed.scheme else href)
    target = (path.parent / raw).resolve() if not Path(raw).is_absolute() else Path(raw).resolve()
    if not any(target.is_relative_to(root) for root in allowed):
        raise UnsafePathError(
            f"{path}: asset {key!r} href {href!r} points outside the item's folder "
            f"{path.parent.resolve()}; move the file there or set GRAVITAS_ALLOWED_ROOTS"
        )
    if not target.is_file():
        raise InputError(f"{path}: asset {key!r} href {href!r} is not a file ({target})")
    return target


def _bbox(value: Any) -> tuple[float, float, float, float] | None:
    if not isinstance(value, list) or len(value) not in (4, 6):
        return None
    try:
        nums = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    w, s, e, n = (nums[0], nums[1], nums[2], nums[3]) if len(nums) == 4 else (
        nums[0], nums[1], nums[3], nums[4])  # fmt: skip
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        return None
    return w, s, e, n
