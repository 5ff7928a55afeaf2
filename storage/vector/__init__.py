"""Vector layers (points, polygons with properties) keyed on the nested grid.

:class:`VectorStore` loads GeoPackage / GeoJSON / Shapefile layers into a small SQLite
index keyed ``layer | depth | morton | fid`` (see :mod:`.cells`), answers bbox queries
by Morton range at any level, rasterises layers onto grid windows and joins them with
rasters (zonal statistics, per-pixel labels).
"""

from __future__ import annotations

from gravitas.storage.vector.cells import enclosing_level, enclosing_levels
from gravitas.storage.vector.load import read_vector
from gravitas.storage.vector.model import Feature, VectorLayerInfo, ZonalStats
from gravitas.storage.vector.store import VectorStore

__all__ = [
    "Feature",
    "VectorLayerInfo",
    "VectorStore",
    "ZonalStats",
    "enclosing_level",
    "enclosing_levels",
    "read_vector",
]
