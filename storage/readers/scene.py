"""The in-memory hyperspectral scene every reader returns, and GLT georeferencing.

Retrievals run in sensor geometry (full detector columns), so a scene keeps its radiance
as (downtrack rows, crosstrack columns, bands) and carries the geometry lookup table
(GLT) that maps each output grid cell to a sensor pixel. :func:`georeference` applies it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gravitas.schemas.errors import InputError

GeoTransform = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class HyperspectralScene:
    """A radiance cube in sensor geometry with its band and geometry metadata.

    ``radiance`` is (rows, cols, bands); ``glt`` is (out_rows, out_cols, 2) int32 holding
    1-based (column, row) indices into the sensor grid, 0 = no data (EMIT/AVIRIS convention);
    ``geotransform`` (GDAL order) and ``crs_wkt`` describe the GLT's output grid.
    """

    radiance: np.ndarray
    wavelengths: np.ndarray
    fwhm: np.ndarray | None
    good_bands: np.ndarray
    glt: np.ndarray | None = None
    geotransform: GeoTransform | None = None
    crs_wkt: str | None = None
    lat: np.ndarray | None = None
    lon: np.ndarray | None = None
    path: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(rows, cols, bands) of the radiance cube."""
        r, c, b = self.radiance.shape
        return int(r), int(c), int(b)


@dataclass(frozen=True)
class GeoRaster:
    """A 2-D array on a north-up grid: ``array`` (rows, cols), GDAL geotransform, CRS WKT."""

    array: np.ndarray
    geotransform: GeoTransform
    crs_wkt: str


def georeference(
    values: np.ndarray,
    glt: np.ndarray,
    geotransform: GeoTransform,
    crs_wkt: str,
    *,
    nodata: float = np.nan,
) -> GeoRaster:
    """Map a (rows, cols) sensor-geometry result through the GLT onto the output grid.

    Negative GLT entries (pixels repeated to fill gaps) are used by magnitude, as in the
    EMIT and AVIRIS products; cells whose GLT is 0 get ``nodata``.
    """
    values = np.asarray(values)
    glt = np.asarray(glt)
    if values.ndim != 2:
        raise InputError(f"georeference needs a (rows, cols) array, got shape {values.shape}")
    if glt.ndim != 3 or glt.shape[2] != 2:
        raise InputError(f"GLT must be (out_rows, out_cols, 2) [x, y], got shape {glt.shape}")
    gx = np.abs(glt[..., 0].astype(np.int64))
    gy = np.abs(glt[..., 1].astype(np.int64))
    valid = (gx > 0) & (gy > 0)
    if valid.any() and (gx.max() > values.shape[1] or gy.max() > values.shape[0]):
        raise InputError(
            f"GLT points outside the sensor grid {values.shape}: max x {gx.max()}, max y "
            f"{gy.max()}; pass the result of the scene this GLT belongs to"
        )
    dtype = np.result_type(values.dtype, np.float32) if np.isnan(nodata) else values.dtype
    out = np.full(glt.shape[:2], nodata, dtype=dtype)
    out[valid] = values[gy[valid] - 1, gx[valid] - 1]
    return GeoRaster(array=out, geotransform=tuple(map(float, geotransform)), crs_wkt=crs_wkt)  # type: ignore[arg-type]
