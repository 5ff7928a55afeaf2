"""VectorStore: vector layers of a node, keyed on the nested grid, joined with rasters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import box

from gravitas.schemas.errors import InputError
from gravitas.schemas.grid import MAX_LEVEL, check_bbox, check_level
from gravitas.storage.keys import layer_id
from gravitas.storage.vector.cells import (
    depth_ranges,
    enclosing_level,
    enclosing_levels,
    point_keys,
    query_ranges,
)
from gravitas.storage.vector.classes import class_dtype, class_key, class_map
from gravitas.storage.vector.index import FeatureIndex, FeatureRow
from gravitas.storage.vector.load import read_vector
from gravitas.storage.vector.model import BBox, Feature, Transform, VectorLayerInfo, ZonalStats
from gravitas.storage.vector.rasterize import burn
from gravitas.storage.vector.window import GridWindow, grid_raster
from gravitas.storage.vector.zonal import zonal

__all__ = ["INDEX_FILE", "VectorStore"]

INDEX_FILE = "index.sqlite"
"""Name of the SQLite index inside a store's directory."""
QUERY_RANGES = 64
"""Morton ranges per query (more would be exact but slower; extra hits are filtered)."""
ATTRIBUTES = ("class", "index")


class VectorStore:
    """Vector layers under one directory (a node keeps them in ``<data_dir>/vector``).

    Example::

        store = VectorStore(tmp / "vector")
        store.add_layer("labels", "s2l1c_ref.gpkg", class_field="cid")
        store.features("labels", (12.5, 52.45, 12.6, 52.5))
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._index = FeatureIndex(self.directory / INDEX_FILE)

    @classmethod
    def for_data_dir(cls, data_dir: str | Path) -> VectorStore:
        """The store of a node whose data directory is ``data_dir``."""
        return cls(Path(data_dir) / "vector")

    def close(self) -> None:
        """Close the index."""
        self._index.close()

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- layers ------------------------------------------------------------------

    def add_layer(
        self,
        name: str,
        path: str | Path,
        id_field: str | None = None,
        class_field: str | None = None,
        *,
        source_layer: str | None = None,
        crs: str | None = None,
        point_level: int = 24,
        replace: bool = False,
    ) -> VectorLayerInfo:
        """Load a GeoPackage / GeoJSON / Shapefile layer and index it under ``name``.

        Polygons are keyed at their smallest enclosing cell, points at their pixel at
        ``point_level`` (:mod:`gravitas.storage.vector.cells`); ``class_field`` values
        get codes 1..K in sorted order.
        """
        layer_id(name)  # validates the name
        check_level(point_level)
        if not replace and self._index.has_layer(name):
            raise InputError(f"vector layer {name!r} exists; pass replace=True (--replace)")
        data = read_vector(path, layer=source_layer, crs=crs)
        for label, f in (("id_field", id_field), ("class_field", class_field)):
            if f is not None and f not in data.fields:
                raise InputError(f"{label} {f!r} is not a field of {path}; fields: {data.fields}")
        props = data.properties
        classes = class_map((p[class_field] for p in props), class_field) if class_field else {}
        geoms = data.geometries
        b = shapely.bounds(geoms).reshape(-1, 4)
        levels, codes = enclosing_levels(b[:, 0], b[:, 1], b[:, 2], b[:, 3])
        depths = levels.copy()
        points = np.flatnonzero(shapely.get_type_id(geoms) == 0)
        if points.size:
            depths[points], codes[points] = point_keys(point_level, b[points, 0], b[points, 1])
            levels[points] = point_level
        wkb = shapely.to_wkb(geoms)
        rows = []
        for i, p in enumerate(props):
            fid_value = p.get(id_field) if id_field else None
            feature_id = int(data.source_fids[i]) if fid_value is None else fid_value
            value = p.get(class_field) if class_field else None
            code = 0 if value is None else classes[class_key(value)]
            rows.append(
                (
                    int(depths[i]),
                    int(codes[i]),
                    i,
                    int(levels[i]),
                    json.dumps(feature_id),
                    code,
                    wkb[i],
                    json.dumps(p),
                )
            )
        lv, counts = np.unique(levels, return_counts=True)
        total = shapely.total_bounds(geoms) if len(geoms) else None
        meta: dict[str, Any] = {
            "source": str(Path(path).resolve()),
            "source_crs": data.source_crs,
            "geometry_type": data.geometry_type,
            "count": len(props),
            "skipped": data.skipped,
            "bounds": None if total is None else [float(v) for v in total],
            "id_field": id_field,
            "class_field": class_field,
            "classes": classes,
            "point_level": point_level,
            "levels": {str(int(k)): int(v) for k, v in zip(lv, counts, strict=True)},
        }
        self._index.put_layer(name, meta, rows)
        return self.layer(name)

    def layer(self, name: str) -> VectorLayerInfo:
        """The summary of one layer (NotFoundError names the known layers)."""
        m = self._index.meta(name)
        return VectorLayerInfo(
            name=name,
            source=m["source"],
            source_crs=m["source_crs"],
            geometry_type=m["geometry_type"],
            count=m["count"],
            skipped=m["skipped"],
            bounds=None if m["bounds"] is None else tuple(m["bounds"]),
            id_field=m["id_field"],
            class_field=m["class_field"],
            classes=dict(m["classes"]),
            point_level=m["point_level"],
            levels={int(k): v for k, v in m["levels"].items()},
        )

    def layers(self) -> list[VectorLayerInfo]:
        """Every stored layer, by name."""
        return [self.layer(n) for n in self._index.names()]

    def drop_layer(self, name: str) -> None:
        """Delete a layer."""
        self._index.drop_layer(name)

    # -- queries -----------------------------------------------------------------

    def _features(self, layer: str, rows: list[FeatureRow]) -> list[Feature]:
        rows = sorted(rows, key=lambda r: r.fid)
        geoms = shapely.from_wkb([r.geom for r in rows]) if rows else []
        return [
            Feature(
                layer,
                r.fid,
                json.loads(r.feature_id),
                g,
                json.loads(r.props),
                r.level,
                r.morton,
                r.class_code,
            )
            for r, g in zip(rows, geoms, strict=True)
        ]

    def candidates(self, layer: str, bbox: BBox, level: int | None = None) -> list[Feature]:
        """Features whose grid key falls in the bbox's Morton ranges at ``level``
        (a superset of :meth:`features`; default level: 3 finer than the bbox's
        smallest enclosing cell)."""
        bbox = check_bbox(bbox)
        self._index.meta(layer)
        if level is None:
            level = min(enclosing_level(bbox)[0] + 3, MAX_LEVEL)
        ranges = query_ranges(bbox, check_level(level), QUERY_RANGES)
        rows: list[FeatureRow] = []
        for depth in self._index.depths(layer):
            rows.extend(self._index.scan(layer, depth, depth_ranges(ranges, level, depth)))
        return self._features(layer, rows)

    def features(
        self, layer: str, bbox: BBox | None = None, level: int | None = None
    ) -> list[Feature]:
        """Features intersecting ``bbox`` (all with None), in fid order.

        Morton-range candidates at ``level`` (:meth:`candidates`), then an exact
        shapely ``intersects`` with the box (touching the edge counts).
        """
        if bbox is None:
            self._index.meta(layer)
            return self._features(layer, self._index.all_rows(layer))
        found = self.candidates(layer, bbox, level)
        if not found:
            return []
        hit = shapely.intersects([f.geometry for f in found], box(*check_bbox(bbox)))
        return [f for f, h in zip(found, hit, strict=True) if h]

    # -- rasters -----------------------------------------------------------------

    def rasterize(
        self,
        layer: str,
        level: int,
        bbox: BBox,
        attribute: str | None = None,
        all_touched: bool = False,
    ) -> tuple[np.ndarray, Transform]:
        """The layer burnt on the grid window of ``bbox`` at ``level``; nodata 0.

        ``attribute``: ``"class"`` (class codes, :attr:`VectorLayerInfo.classes`) or
        ``"index"`` (``fid + 1``); default class when the layer has a class field.
        Features are burnt in fid order, so a later feature wins where they overlap.
        """
        info = self.layer(layer)
        mode = attribute or ("class" if info.class_field else "index")
        if mode not in ATTRIBUTES:
            raise InputError(f"attribute must be one of {ATTRIBUTES}, got {attribute!r}")
        if mode == "class" and not info.class_field:
            raise InputError(
                f"layer {layer!r} has no class field; add it with class_field=... "
                "or rasterise attribute='index'"
            )
        win = GridWindow.from_bbox(level, bbox)
        feats = self.features(layer, win.bbox)
        if mode == "class":
            shapes = [(f.geometry, f.class_code) for f in feats]
            dtype = class_dtype(len(info.classes))
        else:
            shapes = [(f.geometry, f.fid + 1) for f in feats]
            dtype = class_dtype(info.count)
        return burn(shapes, win, dtype, all_touched), win.transform

    def label_pixels(
        self, layer: str, level: int, bbox: BBox, all_touched: bool = False
    ) -> tuple[np.ndarray, Transform]:
        """The class code of every pixel of the window (0 = unlabelled); names in
        ``layer(layer).class_names()``."""
        return self.rasterize(layer, level, bbox, "class", all_touched)

    def zonal_stats(
        self,
        raster: Any,
        transform: Any,
        layer: str,
        level: int | None = None,
        bbox: BBox | None = None,
        *,
        nodata: Any = None,
        all_touched: bool = False,
    ) -> list[ZonalStats]:
        """Count, mean, min, max, std of a grid raster inside each feature of ``layer``.

        ``raster`` is a 2-D array on the grid window given by ``transform`` at
        ``level``, or a DataArray with ``attrs["level"]`` and ``attrs["transform"]``
        (pass ``transform=None``). Features intersecting ``bbox`` (default: the
        raster's window) are used; NaN and ``nodata`` pixels do not count.
        """
        arr, win, attr_nodata = grid_raster(raster, transform, level)
        feats = self.features(layer, bbox if bbox is not None else win.bbox)
        return zonal(arr, win, feats, nodata if nodata is not None else attr_nodata, all_touched)
