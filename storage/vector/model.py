"""Value types of the vector store: features, layer summaries, zonal statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry.base import BaseGeometry

Transform = tuple[float, float, float, float, float, float]
"""North-up affine ``(a, b, c, d, e, f)`` as :func:`gravitas.kernels.grid.window_transform`."""
BBox = tuple[float, float, float, float]
"""``(west, south, east, north)`` in degrees (EPSG:4326)."""


@dataclass(frozen=True)
class Feature:
    """One stored feature, geometry in EPSG:4326."""

    layer: str
    fid: int
    """Index of the feature in its layer, 0..n-1 in source order (rasters burn ``fid + 1``)."""
    feature_id: str | int
    """Value of the layer's id field, or the source file's feature id."""
    geometry: BaseGeometry
    properties: dict[str, Any]
    level: int
    """Grid level of the key: the smallest enclosing cell's level, or a point's level."""
    morton: int
    """Morton code of the key: the enclosing block at ``level``, or a point's pixel."""
    class_code: int = 0
    """Small int of the class field's value (0 = no class field / no value)."""


@dataclass(frozen=True)
class VectorLayerInfo:
    """Summary of a stored layer."""

    name: str
    source: str
    """Path of the file the layer was loaded from."""
    source_crs: str
    geometry_type: str
    count: int
    """Stored features (features with empty or missing geometry are skipped)."""
    skipped: int
    bounds: BBox | None
    """Bounds of all features in degrees, None for an empty layer."""
    id_field: str | None
    class_field: str | None
    classes: dict[str, int] = field(default_factory=dict)
    """Class value (as text) -> code 1..K, in sorted value order; 0 means no class."""
    point_level: int = 24
    levels: dict[int, int] = field(default_factory=dict)
    """Number of features keyed at each grid level."""

    def class_names(self) -> dict[int, str]:
        """Code -> class value (as text), the inverse of :attr:`classes`."""
        return {code: value for value, code in self.classes.items()}


@dataclass(frozen=True)
class ZonalStats:
    """Statistics of a raster's valid pixels inside one feature."""

    fid: int
    feature_id: str | int
    class_code: int
    count: int
    """Valid (not nodata, not NaN) pixels whose centre lies inside the feature."""
    mean: float
    min: float
    max: float
    std: float
    """Population standard deviation (ddof=0); NaN like the others when count is 0."""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for tables and JSON); NaN stays NaN."""
        return {
            "fid": self.fid,
            "feature_id": self.feature_id,
            "class_code": self.class_code,
            "count": self.count,
            "mean": self.mean,
            "min": self.min,
            "max": self.max,
            "std": self.std,
        }

    @property
    def empty(self) -> bool:
        """True when no valid pixel falls inside the feature."""
        return self.count == 0 or math.isnan(self.mean)
