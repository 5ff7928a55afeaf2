"""``load_collection``: a collection of the node's layers as a lazy (t, bands, y, x) cube.

Ingest writes one layer per band, ``<prefix>_<band>`` (``s2_b04``, ``ls_b3``), and records
the collection each layer belongs to in the layer registry. A collection's bands are its
layers with the common prefix stripped; ``eo:bands`` common names (``red``, ``nir``) come
from the sensor band tables (:mod:`gravitas.storage.catalog.bands`) so ``ndvi`` finds
them. The cube is :func:`gravitas.storage.pixels.lazy.open_layers`: one dask chunk per
stored block and time step, nothing read until computed, CRS EPSG:4326 (rioxarray).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import xarray as xr

from gravitas.agents.graphs.errors import (
    BandNotFound,
    CollectionNotFound,
    NoDataForUpdate,
    ProcessArgumentInvalid,
    ResourceLimitExceeded,
)
from gravitas.storage.blocks import BlockStore
from gravitas.storage.pixels.errors import PixelSearchError
from gravitas.storage.pixels.layers import LayerInfo, LayerRegistry
from gravitas.storage.pixels.lazy import open_layers

WORLD = (-180.0, -90.0, 180.0, 90.0)
EARLIEST, LATEST = 0, 4_102_444_800  # 1970 .. 2100

_COMMON: dict[str, tuple[str, str | None]] = {}


def _common_names() -> dict[str, tuple[str, str | None]]:
    """Lower-case band code -> (band code, common name) (Sentinel-2 and Landsat tables)."""
    if not _COMMON:
        from gravitas.storage.catalog import bands

        for table in (bands._SENTINEL2, bands._LANDSAT7):
            for code, (common, _, _) in table.items():
                _COMMON.setdefault(code.lower(), (code, common))
    return _COMMON


@dataclass(frozen=True)
class Band:
    name: str
    layer: str
    common_name: str | None


def _prefix(names: list[str], collection: str) -> str:
    """The ``<prefix>_`` every layer name of a collection starts with ('' if none)."""
    if all(n.startswith(f"{collection}_") for n in names):
        return f"{collection}_"
    first = names[0]
    cut = first.rfind("_") + 1
    while cut > 0 and not all(n.startswith(first[:cut]) and len(n) > cut for n in names):
        cut = first.rfind("_", 0, cut - 1) + 1
    return first[:cut]


def collection_bands(registry: LayerRegistry, collection: str) -> list[Band]:
    """The bands of ``collection`` (its layers), sorted by layer name."""
    infos = [i for i in registry.list() if i.collection == collection]
    if not infos:
        infos = [i for i in registry.list() if i.name == collection and not i.collection]
    if not infos:
        return []
    names = [i.name for i in infos]
    prefix = _prefix(names, collection)
    out = []
    for info in infos:
        band = info.name[len(prefix) :]
        code, common = _common_names().get(band.lower(), (band, None))
        out.append(Band(code, info.name, common))
    commons = {b.common_name for b in out}
    if "nir" not in commons:  # Landsat's b4 is 'nir08': the NIR band ndvi looks for
        out = [Band(b.name, b.layer, "nir") if b.common_name == "nir08" else b for b in out]
    return out


def collections(registry: LayerRegistry) -> dict[str, list[Band]]:
    """Every collection id with its bands."""
    ids = sorted({i.collection or i.name for i in registry.list()})
    return {c: collection_bands(registry, c) for c in ids}


def bbox_of(node: str, extent: Any) -> tuple[float, float, float, float]:
    if extent is None:
        return WORLD
    kinds = {"Polygon", "MultiPolygon", "Feature", "FeatureCollection"}
    if isinstance(extent, Mapping) and extent.get("type") in kinds:
        from shapely.geometry import shape

        geom = extent if "coordinates" in extent else _merge(extent)
        x0, y0, x1, y1 = shape(geom).bounds
        return (x0, y0, x1, y1)

    def get(key: str) -> Any:
        return extent.get(key) if isinstance(extent, Mapping) else getattr(extent, key, None)

    try:
        west, south, east, north = (float(get(k)) for k in ("west", "south", "east", "north"))
    except (TypeError, ValueError):
        raise ProcessArgumentInvalid(
            "spatial_extent needs numbers west, south, east, north (EPSG:4326)",
            node=node,
            argument="spatial_extent",
        ) from None
    crs = get("crs")
    if crs not in (None, 4326, "4326", "EPSG:4326") and "4326" not in str(crs):
        raise ProcessArgumentInvalid(
            f"spatial_extent crs {str(crs)[:60]!r} is not supported; give EPSG:4326 degrees",
            node=node,
            argument="spatial_extent",
        )
    box = (west, south, east, north)
    if not all(math.isfinite(v) for v in box) or not (
        -180 <= west < east <= 180 and -90 <= south < north <= 90
    ):
        raise ProcessArgumentInvalid(
            f"spatial_extent {box} is not a box in degrees (west < east, south < north)",
            node=node,
            argument="spatial_extent",
        )
    return box


def _merge(fc: Mapping[str, Any]) -> Mapping[str, Any]:
    from shapely.geometry import mapping, shape
    from shapely.ops import unary_union

    feats = fc["features"] if fc.get("type") == "FeatureCollection" else [fc]
    return mapping(unary_union([shape(f["geometry"]) for f in feats]))


def _instant(value: Any) -> int | None:
    if value is None:
        return None
    root = getattr(value, "root", value)
    if isinstance(root, str):
        root = datetime.fromisoformat(root.replace("Z", "+00:00"))
    if isinstance(root, datetime):
        if root.tzinfo is None:
            root = root.replace(tzinfo=UTC)
        return int(root.timestamp())
    raise TypeError(value)


def _interval(node: str, extent: Any) -> tuple[int, int]:
    if extent is None:
        return EARLIEST, LATEST
    try:
        start, end = list(extent)
        t0, t1 = _instant(start), _instant(end)
    except (TypeError, ValueError):
        raise ProcessArgumentInvalid(
            "temporal_extent must be [start, end] (RFC 3339 dates or null)",
            node=node,
            argument="temporal_extent",
        ) from None
    t0 = EARLIEST if t0 is None else t0
    t1 = LATEST if t1 is None else t1 - 1  # openEO intervals are left-closed
    if t1 < t0:
        raise ProcessArgumentInvalid(
            "temporal_extent ends before it starts", node=node, argument="temporal_extent"
        )
    return t0, t1


def load(
    store: BlockStore,
    registry: LayerRegistry,
    node: str,
    collection_id: str,
    spatial_extent: Any = None,
    temporal_extent: Any = None,
    bands: Sequence[str] | None = None,
    max_bytes: int | None = None,
) -> xr.DataArray:
    """The lazy cube ``(t, bands, y, x)`` of ``collection_id`` (float, NaN = nodata)."""
    available = collection_bands(registry, collection_id)
    if not available:
        known = sorted(collections(registry))[:20]
        raise CollectionNotFound(
            f"collection {collection_id[:80]!r} is not on this node; known: {known}",
            node=node,
            argument="id",
        )
    if bands is not None:
        if not isinstance(bands, list | tuple) or not all(isinstance(b, str) for b in bands):
            raise ProcessArgumentInvalid("bands must be a list of band names",
                                         node=node, argument="bands")  # fmt: skip
        by_name = {b.name.lower(): b for b in available} | {
            b.common_name: b for b in available if b.common_name
        }
        unknown = [b for b in bands if b.lower() not in by_name and b not in by_name]
        if unknown:
            raise BandNotFound(
                f"band(s) {unknown} not in collection {collection_id!r}; it has "
                f"{[b.name for b in available]}",
                node=node,
                argument="bands",
            )
        chosen = [by_name.get(b) or by_name[b.lower()] for b in bands]
    else:
        chosen = available
    bbox = bbox_of(node, spatial_extent)
    t0, t1 = _interval(node, temporal_extent)
    try:
        cube = open_layers(store, registry, [b.layer for b in chosen], bbox, t0, t1)
    except PixelSearchError as exc:
        raise ResourceLimitExceeded(str(exc), node=node, argument="spatial_extent") from None
    if cube.sizes["time"] == 0:
        raise NoDataForUpdate(
            f"collection {collection_id!r} has no data in the temporal_extent",
            node=node,
            argument="temporal_extent",
        )
    cube = cube.astype(np.float32) if cube.dtype.kind != "f" else cube
    cube = (
        cube.rename({"time": "t", "lat": "y", "lon": "x"})
        .transpose("t", "bands", "y", "x")
        .assign_coords(
            bands=[b.name for b in chosen],
            common_name=("bands", [b.common_name or b.name for b in chosen]),
        )
    )
    cube = cube.rio.set_spatial_dims(x_dim="x", y_dim="y").rio.write_crs("EPSG:4326")
    cube.attrs.update(
        collection=collection_id, layers=[b.layer for b in chosen], level=int(cube.attrs["level"])
    )
    if max_bytes is not None and cube.nbytes > max_bytes:
        raise ResourceLimitExceeded(
            f"the selection is {cube.nbytes / 1e9:.2f} GB, over the limit of "
            f"{max_bytes / 1e9:.2f} GB (GRAVITAS_GRAPH_MAX_BYTES): narrow spatial_extent, "
            "temporal_extent or bands",
            node=node,
            argument="spatial_extent",
        )
    return cube


def infos(registry: LayerRegistry, cube: xr.DataArray) -> list[LayerInfo]:
    """The layer records behind a loaded cube (for overview shortcuts)."""
    return [registry.get(name) for name in cube.attrs.get("layers", [])]
