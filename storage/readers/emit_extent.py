"""The footprint and time of an EMIT L1B radiance NetCDF without reading its radiance:
the per-pixel ``lat``/``lon`` of group ``location`` (else the ortho grid of the
``geotransform`` attribute and the GLT's shape), and ``time_coverage_start``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import netCDF4
import numpy as np
from xarray.backends.locks import HDF5_LOCK

from gravitas.storage.readers.errors import NotHyperspectralFileError

BBox = tuple[float, float, float, float]


def emit_extent(path: Path) -> tuple[BBox, datetime | None]:
    """(west, south, east, north) in EPSG:4326 and the acquisition time (None if the
    file does not say); :class:`NotHyperspectralFileError` if it is not EMIT L1B."""
    with HDF5_LOCK:
        try:
            ds = netCDF4.Dataset(path, "r")
        except OSError as exc:
            raise NotHyperspectralFileError(f"{path}: not a NetCDF/HDF5 file ({exc})") from exc
        with ds:
            if "radiance" not in ds.variables or "location" not in ds.groups:
                raise NotHyperspectralFileError(
                    f"{path}: not an EMIT L1B radiance file (no 'radiance' and 'location')"
                )
            loc = ds.groups["location"].variables
            attrs = {k: ds.getncattr(k) for k in ds.ncattrs()}
            if "lat" in loc and "lon" in loc:
                lat = np.asarray(loc["lat"][:], np.float64)
                lon = np.asarray(loc["lon"][:], np.float64)
                ok = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90)
                if not ok.any():
                    raise NotHyperspectralFileError(f"{path}: no valid lat/lon in 'location'")
                bbox = (
                    float(lon[ok].min()),
                    float(lat[ok].min()),
                    float(lon[ok].max()),
                    float(lat[ok].max()),
                )
            elif "geotransform" in attrs and "glt_x" in loc:
                gt = np.asarray(attrs["geotransform"], np.float64).ravel()
                rows, cols = loc["glt_x"].shape
                x0, x1 = gt[0], gt[0] + cols * gt[1]
                y0, y1 = gt[3], gt[3] + rows * gt[5]
                bbox = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            else:
                raise NotHyperspectralFileError(f"{path}: no lat/lon or geotransform")
    raw = attrs.get("time_coverage_start")
    when = None
    if isinstance(raw, str) and raw:
        try:
            when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
        except ValueError:
            when = None
    return bbox, when
