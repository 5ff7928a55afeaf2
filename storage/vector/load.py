"""Read GeoPackage / GeoJSON / Shapefile layers into shapely geometries in EPSG:4326."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import shapely
from numpy.typing import NDArray
from pyogrio.errors import DataLayerError, DataSourceError
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from gravitas.schemas.errors import (
    CorruptFileError,
    InputError,
    NotFoundError,
    UnsupportedFormatError,
)

__all__ = ["FORMATS", "LoadedVector", "read_vector"]

FORMATS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile"}
"""File suffix -> GDAL driver of the formats :func:`read_vector` accepts."""
WGS84 = CRS.from_epsg(4326)


@dataclass(frozen=True)
class LoadedVector:
    """Features of one file layer, geometry reprojected to EPSG:4326."""

    path: Path
    geometries: NDArray[np.object_]
    """Shapely geometries (lon, lat), empty and missing ones removed."""
    source_fids: NDArray[np.int64]
    properties: list[dict[str, Any]]
    fields: tuple[str, ...]
    """Property names, in file order."""
    source_crs: str
    geometry_type: str
    skipped: int
    """Features dropped for an empty or missing geometry."""


def _py(value: Any) -> Any:
    """A JSON-friendly Python value of one field cell."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _source_crs(meta_crs: str | None, crs: str | None, path: Path, driver: str) -> CRS:
    text = crs or meta_crs
    if text is None:
        if driver == "GeoJSON":
            return WGS84
        raise InputError(
            f"{path} has no coordinate reference system; pass crs='EPSG:<code>' "
            "(or add a .prj file next to a shapefile)"
        )
    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise InputError(f"{path}: cannot understand the CRS {text!r}: {exc}") from exc


def _to_wgs84(geoms: NDArray[np.object_], src: CRS, path: Path) -> NDArray[np.object_]:
    if len(geoms) == 0:
        return geoms
    if not src.equals(WGS84, ignore_axis_order=True):
        tr = Transformer.from_crs(src, WGS84, always_xy=True)

        def fn(xy: NDArray[np.float64]) -> NDArray[np.float64]:
            lon, lat = tr.transform(xy[:, 0], xy[:, 1])
            return np.column_stack([lon, lat])

        geoms = shapely.transform(geoms, fn)
    b = shapely.total_bounds(geoms)
    if not (np.all(np.isfinite(b)) and b[0] >= -180 and b[2] <= 180 and b[1] >= -90 and b[3] <= 90):
        raise InputError(
            f"{path}: coordinates fall outside lon/lat after reprojection from "
            f"{src.to_string()} (bounds {tuple(b)}); pass the right crs"
        )
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        geoms = geoms.copy()
        geoms[invalid] = shapely.make_valid(geoms[invalid])
    return geoms


def read_vector(
    path: str | Path, *, layer: str | None = None, crs: str | None = None
) -> LoadedVector:
    """Read one layer of a vector file; invalid polygons are repaired with ``make_valid``.

    ``layer`` picks the layer of a multi-layer file; ``crs`` overrides (or supplies) the
    source CRS. GeoJSON without a CRS is EPSG:4326 by its spec.
    """
    p = Path(path)
    driver = FORMATS.get(p.suffix.lower())
    if driver is None:
        raise UnsupportedFormatError(
            f"{p}: unsupported vector format {p.suffix or '(no suffix)'!r}; "
            f"use one of {', '.join(sorted(FORMATS))}"
        )
    if not p.is_file():
        raise NotFoundError(f"vector file {p} does not exist")
    try:
        layers = [str(row[0]) for row in pyogrio.list_layers(p)]
        if layer is None and len(layers) > 1:
            raise InputError(f"{p} holds layers {layers}; pick one with layer=NAME")
        if layer is not None and layer not in layers:
            raise NotFoundError(f"{p} has no layer {layer!r}; its layers are {layers}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            meta, fids, wkb, fields = pyogrio.raw.read(p, layer=layer, return_fids=True)
    except (DataSourceError, DataLayerError) as exc:
        raise CorruptFileError(f"{p} is not a readable {driver} file: {exc}") from exc
    try:
        geoms = shapely.from_wkb(wkb)
    except shapely.errors.GEOSException as exc:
        raise CorruptFileError(f"{p}: a geometry cannot be decoded: {exc}") from exc
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    names = [str(n) for n in meta["fields"]]
    rows = [
        {name: _py(col[i]) for name, col in zip(names, fields, strict=True)}
        for i in np.flatnonzero(keep)
    ]
    src = _source_crs(meta.get("crs"), crs, p, driver)
    return LoadedVector(
        path=p,
        geometries=_to_wgs84(geoms[keep], src, p),
        source_fids=np.asarray(fids, np.int64)[keep],
        properties=rows,
        fields=tuple(names),
        source_crs=src.to_string(),
        geometry_type=str(meta.get("geometry_type") or "Unknown"),
        skipped=int((~keep).sum()),
    )
