"""Plume polygons: a plume label image -> GeoJSON-like features in the grid's CRS.

Polygons come from ``rasterio.features.shapes`` (pixel-edge outlines) merged per label
with shapely; each feature carries the plume record's numbers as properties.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import rasterio.features
from rasterio.transform import Affine
from shapely.geometry import mapping, shape
from shapely.ops import unary_union

from gravitas.kernels.plumes import PlumeRecord
from gravitas.schemas.errors import InputError

EARTH_M_PER_DEG = 111_320.0


def plume_polygons(
    labels: np.ndarray,
    geotransform: Sequence[float],
    records: Sequence[PlumeRecord] = (),
    *,
    crs_wkt: str | None = None,
) -> dict[str, Any]:
    """GeoJSON FeatureCollection with one (Multi)Polygon per plume label."""
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise InputError(f"labels must be (rows, cols), got shape {lab.shape}")
    if len(geotransform) != 6:
        raise InputError(f"geotransform needs 6 numbers (GDAL order), got {len(geotransform)}")
    transform = Affine.from_gdal(*[float(v) for v in geotransform])
    pieces: dict[int, list[Any]] = {}
    lab32 = lab.astype(np.int32)
    for geom, value in rasterio.features.shapes(lab32, mask=lab32 > 0, transform=transform):
        pieces.setdefault(int(value), []).append(shape(geom))
    by_label = {r.label: r for r in records}
    features = []
    for value in sorted(pieces):
        props: dict[str, Any] = {"label": value}
        if value in by_label:
            props.update(asdict(by_label[value]))
        geom = unary_union(pieces[value])
        features.append({"type": "Feature", "geometry": mapping(geom), "properties": props})
    out: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if crs_wkt is not None:
        out["crs_wkt"] = crs_wkt
    return out


def geographic_pixel_area_m2(geotransform: Sequence[float], rows: int, cols: int) -> np.ndarray:
    """Per-pixel area (m^2) of a north-up lon/lat grid (spherical approximation)."""
    _x0, dx, _, y0, _, dy = (float(v) for v in geotransform)
    lat = y0 + (np.arange(rows) + 0.5) * dy
    row_area = abs(dx * dy) * EARTH_M_PER_DEG**2 * np.cos(np.deg2rad(lat))
    return np.repeat(row_area[:, None], cols, axis=1)
