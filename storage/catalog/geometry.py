"""Geometry helpers shared by the catalog backends (shapely)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import orjson
import shapely
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from gravitas.storage.catalog.errors import InvalidItemError, InvalidSearchError

__all__ = ["SPATIAL_OPS", "bbox_of", "bbox_polygon", "geometry_from_json", "spatial_relation"]

SPATIAL_OPS = {
    "s_intersects": "intersects",
    "s_disjoint": "disjoint",
    "s_within": "within",
    "s_contains": "contains",
    "s_equals": "equals",
    "s_touches": "touches",
    "s_overlaps": "overlaps",
    "s_crosses": "crosses",
}
"""CQL2 spatial operators and the shapely predicate each one maps to."""


def bbox_polygon(bbox: Sequence[float]) -> BaseGeometry:
    """A lon/lat box as a polygon; west > east (antimeridian) gives a two-part shape."""
    vals = [float(v) for v in bbox]
    w, s, e, n = (vals[0], vals[1], vals[3], vals[4]) if len(vals) == 6 else vals
    if w > e:
        return shapely.MultiPolygon([box(w, s, 180.0, n), box(-180.0, s, e, n)])
    return box(w, s, e, n)


def geometry_from_json(geom: Mapping[str, Any] | Sequence[float]) -> BaseGeometry:
    """A shapely geometry from GeoJSON, a CQL2 ``{"bbox": [...]}`` or a bbox list."""
    try:
        if isinstance(geom, Mapping) and "bbox" in geom and "type" not in geom:
            return bbox_polygon(geom["bbox"])
        if isinstance(geom, Sequence) and not isinstance(geom, str | bytes):
            return bbox_polygon(geom)
        out = shape(geom)
    except Exception as exc:
        raise InvalidSearchError(f"not a valid GeoJSON geometry or bbox: {geom!r} ({exc})") from exc
    if not out.is_valid:
        out = out.buffer(0)
    return out


def bbox_of(item: Mapping[str, Any]) -> tuple[float, float, float, float] | None:
    """An item's 2-D bbox: its ``bbox`` field, else computed from ``geometry``."""
    bbox = item.get("bbox")
    if bbox:
        if len(bbox) not in (4, 6):
            raise InvalidItemError(f"item {item.get('id')!r} has a bbox of {len(bbox)} numbers")
        w, s, e, n = (bbox[0], bbox[1], bbox[3], bbox[4]) if len(bbox) == 6 else bbox
        return float(w), float(s), float(e), float(n)
    geom = item.get("geometry")
    if not geom:
        return None
    try:
        minx, miny, maxx, maxy = shape(geom).bounds
    except Exception as exc:
        raise InvalidItemError(f"item {item.get('id')!r} has an invalid geometry: {exc}") from exc
    return float(minx), float(miny), float(maxx), float(maxy)


@lru_cache(maxsize=4096)
def _parse(text: str) -> BaseGeometry:
    return geometry_from_json(orjson.loads(text))


def spatial_relation(predicate: str, left: str | None, right: str | None) -> int | None:
    """SQL function body: ``predicate`` (a shapely method) of two GeoJSON texts; 1/0."""
    if left is None or right is None:
        return None
    try:
        a, b = _parse(left), _parse(right)
    except InvalidSearchError:
        return 0
    return int(bool(getattr(a, predicate)(b)))
