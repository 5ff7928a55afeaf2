"""The geometries of ``aggregate_spatial``: inline GeoJSON or a vector layer of the node.

``geometries`` is either GeoJSON (a Polygon/MultiPolygon, Feature or FeatureCollection
in EPSG:4326) or the NAME of a vector layer the node holds (``gravitas vector add``,
:class:`gravitas.storage.vector.VectorStore` under ``<data_dir>/vector``). A layer
contributes its polygon features that intersect the cube, in feature order, labelled
with their id field's value. Every geometry is checked before anything is read:
a Polygon or MultiPolygon, valid (no self-intersections), finite coordinates inside
lon/lat bounds, at most :data:`MAX_GEOMETRIES` geometries and :data:`MAX_VERTICES`
vertices in all. Refusals name the bad value; a request never creates or changes the
vector store (a node without one refuses the name as unknown).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gravitas.agents.graphs.errors import CollectionNotFound, ProcessArgumentInvalid

MAX_GEOMETRIES = 10_000
MAX_VERTICES = 1_000_000
LAYER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")


@dataclass(frozen=True)
class Zones:
    """Checked shapely geometries and their labels (the ``geometry`` coordinate)."""

    geoms: list[Any]
    labels: list[Any]


def _bad(msg: str, node: str) -> ProcessArgumentInvalid:
    return ProcessArgumentInvalid(msg, node=node, argument="geometries")


def check_geometry(geom: Any, what: str, node: str) -> Any:
    """``geom`` if it is a valid, finite lon/lat (Multi)Polygon, else refused naming it."""
    import shapely

    if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
        kind = "empty" if geom is None or geom.is_empty else geom.geom_type
        raise _bad(f"{what} is {kind}, not a GeoJSON Polygon or MultiPolygon", node)
    coords = shapely.get_coordinates(geom)
    if not np.isfinite(coords).all():
        raise _bad(f"{what} has a NaN or infinite coordinate", node)
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    if lo[0] < -180 or hi[0] > 180 or lo[1] < -90 or hi[1] > 90:
        raise _bad(
            f"{what} has coordinates outside lon -180..180 / lat -90..90 "
            f"(bounds {[round(float(v), 4) for v in (*lo, *hi)]}); send EPSG:4326",
            node,
        )
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)[:120]
        raise _bad(f"{what} is not a valid polygon ({reason}); repair it first", node)
    return geom


def _check_all(geoms: list[Any], labels: list[Any], node: str) -> Zones:
    import shapely

    if not geoms or len(geoms) > MAX_GEOMETRIES:
        raise _bad(f"geometries must hold 1..{MAX_GEOMETRIES} polygons, got {len(geoms)}", node)
    vertices = int(shapely.get_num_coordinates(np.asarray(geoms, dtype=object)).sum())
    if vertices > MAX_VERTICES:
        raise _bad(f"geometries have {vertices} vertices, more than {MAX_VERTICES}", node)
    for geom, label in zip(geoms, labels, strict=True):
        check_geometry(geom, f"geometry {label!s:.60}", node)
    return Zones(geoms, labels)


def from_geojson(value: Any, node: str) -> Zones:
    """Checked geometries of a GeoJSON value."""
    from shapely.geometry import shape

    if not isinstance(value, Mapping):
        raise _bad("geometries must be GeoJSON or the name of a vector layer", node)
    kind = value.get("type")
    if kind == "FeatureCollection":
        feats = value.get("features")
        if not isinstance(feats, list) or not feats or len(feats) > MAX_GEOMETRIES:
            raise _bad(f"a FeatureCollection needs 1..{MAX_GEOMETRIES} features", node)
        raw = [f.get("geometry") if isinstance(f, Mapping) else None for f in feats]
    elif kind == "Feature":
        raw = [value.get("geometry")]
    else:
        raw = [value]
    geoms = []
    for i, g in enumerate(raw):
        try:
            geom = shape(g)  # type: ignore[arg-type]
        except Exception:
            raise _bad(f"geometry {i} is not a GeoJSON Polygon or MultiPolygon", node) from None
        geoms.append(geom)
    return _check_all(geoms, list(range(len(geoms))), node)


def from_layer(name: str, data_dir: Path, bbox: tuple[float, float, float, float] | None,
               node: str) -> Zones:  # fmt: skip
    """Checked polygons of vector layer ``name`` intersecting ``bbox`` (read-only)."""
    if not LAYER_NAME_RE.match(name):
        raise _bad(
            f"geometries {name[:80]!r} is not a vector layer name (1-200 letters, digits "
            "and ._:- starting with a letter or digit) nor GeoJSON",
            node,
        )
    from gravitas.storage.vector.store import INDEX_FILE, VectorStore

    directory = Path(data_dir) / "vector"
    known: list[str] = []
    if (directory / INDEX_FILE).is_file():
        with VectorStore(directory) as store:
            known = [i.name for i in store.layers()]
            if name in known:
                feats = store.features(name, bbox)
                if not feats:
                    raise _bad(f"no feature of vector layer {name!r} intersects the cube", node)
                if len(feats) > MAX_GEOMETRIES:
                    raise _bad(
                        f"vector layer {name!r} has {len(feats)} features in the cube, more "
                        f"than {MAX_GEOMETRIES}; narrow the spatial extent",
                        node,
                    )
                return _check_all([f.geometry for f in feats],
                                  [str(f.feature_id) for f in feats], node)  # fmt: skip
    raise CollectionNotFound(
        f"no vector layer {name!r} on this node; known vector layers: "
        f"{', '.join(known[:20]) or 'none'} (add one with `gravitas vector add`)",
        node=node,
        argument="geometries",
    )


def zones_of(value: Any, data_dir: Path | None, bbox: Any, node: str) -> Zones:
    """:class:`Zones` of an ``aggregate_spatial`` ``geometries`` argument."""
    if isinstance(value, Zones):
        return value
    if isinstance(value, str):
        if data_dir is None:
            raise _bad("vector layers are not available here; send GeoJSON", node)
        return from_layer(value, data_dir, bbox, node)
    return from_geojson(value, node)
