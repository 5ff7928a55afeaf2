"""openEO collections of a node, built from its layer registry the way the graph engine's
``load_collection`` reads them (:func:`gravitas.agents.graphs.collection.collection_bands`).

A collection is the ``collection`` recorded with each layer (``gravitas ingest
--collection s2 --layer-name s2`` writes layers ``s2_b04``, ``s2_b08`` of collection
``s2``; without ``--collection`` it is ``local``); its bands are its layers with their
common prefix stripped (``b04``, ``b08``). Band codes of Sentinel-2 and Landsat 7 carry
their ``eo:bands`` common names, so the client's ``ndvi()`` finds red and nir. The
spatial extent comes from the keys of blocks three levels above native (no values
read), the temporal extent from the registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gravitas.kernels.grid import BLOCK_SHIFT, block_bounds
from gravitas.kernels.morton import morton_xy
from gravitas.storage.blocks import BlockStore
from gravitas.storage.catalog.bands import _LANDSAT7, _SENTINEL2
from gravitas.storage.keys import decode_key, key_range
from gravitas.storage.pixels.layers import LayerInfo, LayerRegistry

STAC_VERSION = "1.0.0"
COLLECTION_ID_RE = re.compile(r"^[A-Za-z0-9_\-.~]{1,100}$")
_WORLD = (-180.0, -85.0, 180.0, 85.0)
_MAX_EXTENT_KEYS = 100_000


@dataclass
class LocalCollection:
    """A collection of this node: its id and band -> layer."""

    id: str
    bands: dict[str, LayerInfo] = field(default_factory=dict)
    common: dict[str, str | None] = field(default_factory=dict)

    def layer(self, band: str) -> str:
        return self.bands[band].name


def group_layers(registry: LayerRegistry) -> dict[str, LocalCollection]:
    """Collections of the node's layers, by id (bands as the engine names them)."""
    from gravitas.agents.graphs.collection import collection_bands

    infos = {i.name: i for i in registry.list()}
    ids = sorted({i.collection or i.name for i in infos.values()})
    out: dict[str, LocalCollection] = {}
    for cid in ids:
        if not COLLECTION_ID_RE.match(cid):
            continue
        coll = LocalCollection(cid)
        for band in collection_bands(registry, cid):
            coll.bands[band.name] = infos[band.layer]
            coll.common[band.name] = band.common_name
        if coll.bands:
            out[cid] = coll
    return out


def eo_band(band: str, common_name: str | None = None) -> dict[str, Any]:
    """The ``eo:bands`` entry of a band code (common name for S2 / Landsat 7 codes)."""
    entry: dict[str, Any] = {"name": band}
    band = band.lower()
    table: dict[str, tuple[str | None, float, float]] | None = None
    key = band
    if re.fullmatch(r"b\d[\da]", band):
        table, key = _SENTINEL2, band.upper()
    elif re.fullmatch(r"b\d", band):
        table = _LANDSAT7
    if table is not None and key in table:
        common, centre, fwhm = table[key]
        if common and not common_name:
            entry["common_name"] = common
        entry["center_wavelength"] = centre
        entry["full_width_half_max"] = fwhm
    if common_name:
        entry["common_name"] = common_name
    return entry


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if dt is not None else None


_BBOX_CACHE: dict[tuple[int, str, int, str], list[float]] = {}


def layer_bbox(store: BlockStore, info: LayerInfo) -> list[float]:
    """The lon/lat box of a layer's stored blocks three levels above native (keys only,
    no values read; cached per layer state)."""
    if info.t_min is None or info.t_max is None:
        return list(_WORLD)
    cache_key = (id(store), info.name, info.blocks, str(info.t_max))
    if cache_key in _BBOX_CACHE:
        return _BBOX_CACHE[cache_key]
    level = max(info.top_level, info.native_level - 3)
    lo, hi = key_range(info.name, level, info.t_min, info.t_max)
    x0 = y0 = float("inf")
    x1 = y1 = float("-inf")
    for seen, key in enumerate(store.scan_keys(lo, hi)):
        bx, by = morton_xy(decode_key(key).morton)
        w, s, e, n = block_bounds(level, bx, by)
        x0, y0, x1, y1 = min(x0, w), min(y0, s), max(x1, e), max(y1, n)
        if seen > _MAX_EXTENT_KEYS:
            break
    if x0 == float("inf"):
        return list(_WORLD)
    box = [round(v, 6) for v in (x0, y0, x1, y1)]
    if len(_BBOX_CACHE) > 10_000:
        _BBOX_CACHE.clear()
    _BBOX_CACHE[cache_key] = box
    return box


def _union(boxes: list[list[float]]) -> list[float]:
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def collection_doc(
    coll: LocalCollection, store: BlockStore | None, base_url: str, node_id: str, full: bool
) -> dict[str, Any]:
    """The openEO/STAC collection document of a local collection."""
    infos = list(coll.bands.values())
    bbox = _union([layer_bbox(store, i) for i in infos]) if store is not None else list(_WORLD)
    t0 = min((i.t_min for i in infos if i.t_min), default=None)
    t1 = max((i.t_max for i in infos if i.t_max), default=None)
    bands = list(coll.bands)
    eo_bands = [eo_band(b, coll.common.get(b)) for b in bands]
    doc: dict[str, Any] = {
        "stac_version": STAC_VERSION,
        "stac_extensions": [
            "https://stac-extensions.github.io/datacube/v2.2.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
        ],
        "type": "Collection",
        "id": coll.id,
        "title": f"{coll.id} ({', '.join(bands)})",
        "description": (
            f"Layers {', '.join(coll.layer(b) for b in bands)} of gravitas node {node_id} "
            "(EPSG:4326 block grid)"
        ),
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [bbox]},
            "temporal": {"interval": [[_iso(t0), _iso(t1)]]},
        },
        "links": [
            {"rel": "self", "href": f"{base_url}/collections/{coll.id}"},
            {"rel": "root", "href": f"{base_url}/"},
            {"rel": "parent", "href": f"{base_url}/"},
        ],
        "summaries": {"eo:bands": eo_bands},
        "cube:dimensions": {
            "x": {
                "type": "spatial",
                "axis": "x",
                "extent": [bbox[0], bbox[2]],
                "reference_system": 4326,
            },
            "y": {
                "type": "spatial",
                "axis": "y",
                "extent": [bbox[1], bbox[3]],
                "reference_system": 4326,
            },
            "t": {"type": "temporal", "extent": [_iso(t0), _iso(t1)]},
            "bands": {"type": "bands", "values": bands},
        },
        "federation:backends": [node_id],
    }
    if full:
        doc["keywords"] = ["gravitas", node_id]
        doc["providers"] = [{"name": f"gravitas node {node_id}", "roles": ["host"]}]
    return doc


def local_collections(registry: LayerRegistry) -> dict[str, LocalCollection]:
    """The node's collections now."""
    return group_layers(registry)


def check_collection_id(collection_id: str) -> str:
    """A collection id from a path or graph, or :class:`CollectionNotFoundError`."""
    from gravitas.streams.openeo.errors import CollectionNotFoundError

    if not COLLECTION_ID_RE.match(collection_id):
        raise CollectionNotFoundError(
            f"collection id {collection_id[:100]!r} is not valid: use letters, digits, '_-.~'"
        )
    return collection_id


__all__ = [
    "BLOCK_SHIFT",
    "LocalCollection",
    "check_collection_id",
    "collection_doc",
    "eo_band",
    "group_layers",
    "local_collections",
]
