"""Collections that follow their items: extents, summaries and ``item_assets``.

A catalog backend calls :func:`grow` for every item it stores, inside the same write
transaction (so the item's upserter is the collection's one writer), and
:func:`new_collection` when an item arrives before its collection. Every step is a
union (bbox, time interval, summary values) or an intersection (``item_assets``
definitions), so the result does not depend on the order items arrive in and a replayed
item changes nothing: the stored bytes converge.

Example::

    coll = new_collection("landsat-7")
    for item in items:
        coll = grow(coll, item)
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import datetime as DateTime
from typing import Any

from gravitas.storage.catalog.base import parse_datetime
from gravitas.storage.catalog.errors import InvalidSearchError

__all__ = ["STAC_VERSION", "covering", "grow", "grow_in_place", "new_collection"]

STAC_VERSION = "1.1.0"
"""The STAC version of every document the node writes and serves."""

MAX_VALUES = 64
"""Distinct values a set summary keeps (the smallest, in a fixed order)."""
MAX_ITEM_ASSETS = 256
"""Asset keys ``item_assets`` keeps (the first by name), whatever items bring."""

_SET_FIELDS = ("constellation", "platform", "instruments", "gsd", "proj:code", "proj:epsg")
_RANGE_FIELDS = ("eo:cloud_cover",)
_BAND_FIELDS = ("eo:bands",)
_PER_ITEM_ASSET_FIELDS = frozenset(
    {
        "href",
        "alternate",
        "created",
        "updated",
        "proj:bbox",
        "proj:centroid",
        "proj:geometry",
        "proj:shape",
        "proj:transform",
    }
)
_PER_ITEM_BAND_FIELDS = frozenset({"statistics", "histogram"})


def new_collection(collection_id: str, node_id: str | None = None) -> dict[str, Any]:
    """An empty collection for items that arrived before one was created (no extent
    yet: the first :func:`grow` sets it)."""
    where = f" on node {node_id}" if node_id else ""
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "id": collection_id,
        "title": collection_id,
        "description": f"Items of {collection_id}{where}; extents and summaries follow the items.",
        "license": "other",
        "extent": {"spatial": {"bbox": []}, "temporal": {"interval": []}},
        "links": [],
    }


def covering(collection: Mapping[str, Any], items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``collection`` grown by every item of ``items``."""
    out = copy.deepcopy(dict(collection))
    for item in items:
        out = grow_in_place(out, item)
    return out


def grow(collection: Mapping[str, Any], item: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``collection`` whose extent, summaries and ``item_assets`` cover ``item``."""
    return grow_in_place(copy.deepcopy(dict(collection)), item)


def grow_in_place(coll: dict[str, Any], item: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`grow` without the copy: ``coll`` itself is changed and returned."""
    extent = coll.setdefault("extent", {})
    if not isinstance(extent, dict):
        return coll
    _grow_bbox(extent.setdefault("spatial", {}), item)
    _grow_interval(extent.setdefault("temporal", {}), item)
    _grow_summaries(coll, item)
    _grow_item_assets(coll, item)
    spatial, temporal = extent["spatial"], extent["temporal"]
    if isinstance(spatial, dict) and not spatial.get("bbox"):
        spatial["bbox"] = [[-180.0, -90.0, 180.0, 90.0]]  # items without any footprint
    if isinstance(temporal, dict) and not temporal.get("interval"):
        temporal["interval"] = [[None, None]]
    return coll


# --- extent ---------------------------------------------------------------------------


def _item_bbox(item: Mapping[str, Any]) -> list[float] | None:
    from gravitas.storage.catalog.geometry import bbox_of

    try:
        box = bbox_of(item)
    except Exception:  # a malformed geometry: the item's own checks report it
        return None
    if box is None:
        return None
    w, s, e, n = (float(v) for v in box)
    if w > e:  # crosses the antimeridian: the union is taken over every longitude
        w, e = -180.0, 180.0
    return [w, s, e, n]


def _grow_bbox(spatial: dict[str, Any], item: Mapping[str, Any]) -> None:
    box = _item_bbox(item)
    if box is None:
        return
    boxes = spatial.get("bbox")
    if not isinstance(boxes, list) or not boxes or not isinstance(boxes[0], list):
        spatial["bbox"] = [box]
        return
    first = boxes[0]
    if len(first) == 6:
        first = [first[0], first[1], first[3], first[4]]
    if len(first) != 4:
        boxes[0] = box
        return
    boxes[0] = [
        min(first[0], box[0]),
        min(first[1], box[1]),
        max(first[2], box[2]),
        max(first[3], box[3]),
    ]


def _when(value: Any) -> DateTime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_datetime(value, strict=False)
    except InvalidSearchError:
        return None


def _iso(value: DateTime) -> str:
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def _grow_interval(temporal: dict[str, Any], item: Mapping[str, Any]) -> None:
    props = item.get("properties") or {}
    start = _when(props.get("start_datetime")) or _when(props.get("datetime"))
    end = _when(props.get("end_datetime")) or _when(props.get("datetime"))
    if start is None or end is None:
        return
    intervals = temporal.get("interval")
    if not isinstance(intervals, list) or not intervals or not isinstance(intervals[0], list):
        temporal["interval"] = [[_iso(start), _iso(end)]]
        return
    first = intervals[0] + [None] * (2 - len(intervals[0]))
    lo, hi = first[0], first[1]
    # None is an open end: it stays open; a bound we cannot read is replaced
    if lo is not None:
        old = _when(lo)
        lo = _iso(start if old is None or start < old else old)
    if hi is not None:
        old = _when(hi)
        hi = _iso(end if old is None or end > old else old)
    intervals[0] = [lo, hi]


# --- summaries ------------------------------------------------------------------------


def _order(value: Any) -> tuple[int, Any]:
    """A total order over JSON values: numbers, then strings, then the rest as JSON."""
    import orjson

    if isinstance(value, bool):
        return (2, orjson.dumps(value).decode())
    if isinstance(value, int | float):
        return (0, float(value))
    if isinstance(value, str):
        return (1, value)
    return (2, orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())


def _values(item: Mapping[str, Any], name: str) -> list[Any]:
    """Values of ``name`` on the item and on its assets (lists flattened)."""
    props = item.get("properties") or {}
    found: list[Any] = []
    sources: list[Mapping[str, Any]] = [props]
    assets = item.get("assets")
    if isinstance(assets, Mapping):
        sources += [a for a in assets.values() if isinstance(a, Mapping)]
    for source in sources:
        value = source.get(name)
        if value is None:
            continue
        found.extend(value if isinstance(value, list) else [value])
    return [v for v in found if v is not None]


def _merge_set(current: Any, values: list[Any]) -> Any:
    if current is not None and not isinstance(current, list):
        if isinstance(current, dict) and {"minimum", "maximum"} <= current.keys():
            return _merge_range(current, values)
        return current  # a JSON-schema summary is left as written
    merged: dict[str, Any] = {}
    for v in [*(current or []), *values]:
        merged[repr(_order(v))] = v
    ordered = sorted(merged.values(), key=_order)
    return ordered[:MAX_VALUES]


def _merge_range(current: Any, values: list[Any]) -> Any:
    nums = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not nums:
        return current
    if isinstance(current, dict) and {"minimum", "maximum"} <= current.keys():
        try:
            nums += [float(current["minimum"]), float(current["maximum"])]
        except (TypeError, ValueError):
            return current
    elif current is not None:
        return current
    return {"minimum": min(nums), "maximum": max(nums)}


def _grow_summaries(coll: dict[str, Any], item: Mapping[str, Any]) -> None:
    summaries = coll.get("summaries")
    if summaries is not None and not isinstance(summaries, dict):
        return
    summaries = dict(summaries or {})
    for name in _SET_FIELDS:
        values = _values(item, name)
        if values:
            summaries[name] = _merge_set(summaries.get(name), values)
    for name in _RANGE_FIELDS:
        values = _values(item, name)
        if values:
            summaries[name] = _merge_range(summaries.get(name), values)
    for name in _BAND_FIELDS:
        values = [v for v in _values(item, name) if isinstance(v, dict)]
        if values:
            summaries[name] = _merge_set(summaries.get(name), values)
    if summaries:
        coll["summaries"] = dict(sorted(summaries.items()))


# --- item_assets ----------------------------------------------------------------------

_MISSING = object()


def _common(a: Any, b: Any) -> Any:
    """What two asset definitions share: equal members, recursively (lists of objects of
    the same length element by element); ``_MISSING`` when nothing is shared."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = {}
        for key in sorted(a.keys() & b.keys()):
            value = _common(a[key], b[key])
            if value is not _MISSING:
                out[key] = value
        return out
    if (
        isinstance(a, list)
        and isinstance(b, list)
        and len(a) == len(b)
        and a
        and all(isinstance(x, dict) for x in a + b)
    ):
        return [_common(x, y) for x, y in zip(a, b, strict=True)]
    return a if a == b else _MISSING


def _definition(asset: Mapping[str, Any]) -> dict[str, Any]:
    """An asset without what belongs to one item (href, file facts, grid, statistics)."""
    out: dict[str, Any] = {}
    for key, value in asset.items():
        if key in _PER_ITEM_ASSET_FIELDS or key.startswith("file:"):
            continue
        if key in ("raster:bands", "bands") and isinstance(value, list):
            value = [
                {k: v for k, v in band.items() if k not in _PER_ITEM_BAND_FIELDS}
                if isinstance(band, dict)
                else band
                for band in value
            ]
        out[key] = value  # shared with the item: growth replaces values, never edits them
    return out


def _grow_item_assets(coll: dict[str, Any], item: Mapping[str, Any]) -> None:
    assets = item.get("assets")
    current = coll.get("item_assets")
    if not isinstance(assets, Mapping) or not assets:
        return
    if current is not None and not isinstance(current, dict):
        return
    merged = dict(current or {})
    for key, asset in assets.items():
        if not isinstance(asset, Mapping):
            continue
        definition = _definition(asset)
        if key in merged and isinstance(merged[key], dict):
            shared = _common(merged[key], definition)
            definition = shared if isinstance(shared, dict) else {}
        if len(definition) < 2:  # the schema wants two members; the key names the asset
            definition.setdefault("title", str(key))
        if len(definition) < 2:
            definition.setdefault("roles", ["data"])
        merged[str(key)] = definition
    coll["item_assets"] = dict(sorted(merged.items())[:MAX_ITEM_ASSETS])
