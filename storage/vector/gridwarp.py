"""Warp one band of a raster file onto a grid window (for joins with file rasters)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.transform import Affine
from rasterio.warp import Resampling, reproject, transform_bounds

from gravitas.schemas.errors import CorruptFileError, InputError, NotFoundError, RequestError
from gravitas.storage.vector.model import BBox, Transform
from gravitas.storage.vector.window import GridWindow

__all__ = ["overlap_bbox", "raster_bbox", "warp_to_grid"]


def _open(path: Path) -> rasterio.DatasetReader:
    if not path.is_file():
        raise NotFoundError(f"raster file {path} does not exist")
    try:
        return rasterio.open(path)
    except RasterioIOError as exc:
        raise CorruptFileError(f"{path} is not a readable raster: {exc}") from exc


def raster_bbox(path: str | Path) -> BBox:
    """The raster's bounds in degrees (EPSG:4326)."""
    with _open(Path(path)) as src:
        if src.crs is None:
            raise InputError(f"{path} has no CRS; give it one (gdal_edit.py -a_srs EPSG:...)")
        w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    return float(w), float(s), float(e), float(n)


def overlap_bbox(a: BBox, b: BBox) -> BBox | None:
    """The intersection of two ``(west, south, east, north)`` boxes, None if disjoint."""
    box = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return None if box[0] > box[2] or box[1] > box[3] else box


def warp_to_grid(
    path: str | Path,
    level: int,
    bbox: BBox | None = None,
    band: int = 1,
    resampling: str = "nearest",
) -> tuple[np.ndarray, Transform]:
    """``(float32 array, transform)`` of ``band`` on the grid window of ``bbox`` at
    ``level`` (default: the raster's own bounds); NaN where the source has no data."""
    p = Path(path)
    try:
        method = Resampling[resampling]
    except KeyError:
        names = ", ".join(r.name for r in Resampling)
        raise InputError(f"unknown resampling {resampling!r}; use one of {names}") from None
    win = GridWindow.from_bbox(level, bbox or raster_bbox(p))
    with _open(p) as src:
        if not 1 <= band <= src.count:
            raise RequestError(f"{p} has bands 1..{src.count}, got band {band}")
        try:
            data = src.read(band)
        except RasterioIOError as exc:
            raise CorruptFileError(f"{p}: band {band} cannot be read: {exc}") from exc
        out = np.full(win.shape, np.nan, np.float32)
        reproject(
            data,
            out,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=src.nodata,
            dst_transform=Affine(*win.transform),
            dst_crs="EPSG:4326",
            dst_nodata=np.nan,
            resampling=method,
        )
    return out, win.transform
