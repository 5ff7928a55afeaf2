"""Pixel-search answers as files people load elsewhere: JSON, CSV and GeoJSON.

Each writer takes the whole :class:`SearchResult` and returns text; ``gravitas search``
prints it or writes it to ``--out``. Matches come sorted by value, largest first, the
same order the table shows.
"""

from __future__ import annotations

import csv
import io
from typing import Literal

import orjson

from gravitas.schemas.events import PixelMatch, SearchResult

Format = Literal["table", "json", "csv", "geojson"]
FORMATS: tuple[Format, ...] = ("table", "json", "csv", "geojson")


def ranked(res: SearchResult) -> list[PixelMatch]:
    """Matches, largest value first."""
    return sorted(res.matches, key=lambda m: -m.value)


def as_json(res: SearchResult, layer: str) -> str:
    """The whole answer: counts, blocks read and every match."""
    doc = {
        "layer": layer,
        "request_id": res.request_id,
        "total_matches": res.total_matches,
        "returned": len(res.matches),
        "truncated": res.truncated,
        "blocks_read": res.blocks_read,
        "blocks_total": res.blocks_total,
        "served_by": res.served_by,
        "counts_per_time": res.counts_per_time,
        "matches": [m.model_dump(mode="json") for m in ranked(res)],
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"


def as_csv(res: SearchResult) -> str:
    """One row per match: lon, lat, time (ISO 8601, UTC), value."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["lon", "lat", "time", "value"])
    for m in ranked(res):
        w.writerow([repr(m.lon), repr(m.lat), m.time.isoformat(), repr(m.value)])
    return buf.getvalue()


def as_geojson(res: SearchResult, layer: str) -> str:
    """A FeatureCollection of points at the matching pixels' centres (RFC 7946, lon/lat)."""
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [m.lon, m.lat]},
            "properties": {"layer": layer, "time": m.time.isoformat(), "value": m.value},
        }
        for m in ranked(res)
    ]
    doc = {
        "type": "FeatureCollection",
        "features": features,
        "total_matches": res.total_matches,
        "truncated": res.truncated,
    }
    return orjson.dumps(doc).decode() + "\n"


def render(res: SearchResult, fmt: Format, layer: str) -> str:
    """The answer in one of the file formats (not ``table``)."""
    if fmt == "json":
        return as_json(res, layer)
    if fmt == "csv":
        return as_csv(res)
    if fmt == "geojson":
        return as_geojson(res, layer)
    raise ValueError(f"no text rendering for format {fmt!r}")
