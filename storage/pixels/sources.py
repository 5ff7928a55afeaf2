"""Read scene files (GeoTIFF/COG, JPEG2000, NetCDF, GRIB) into 2-D rasters with georeferencing.

Each :class:`SourceRaster` is one band (or one variable x level x member) at one time
step, in its source grid: an affine transform + CRS, or 2-D lon/lat arrays
(curvilinear grids such as Stage IV's polar stereographic). Continuous rasters come
back as float32 with NaN for nodata; categorical ones keep their integer dtype.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from gravitas.schemas.errors import CorruptFileError, InputError, UnsupportedFormatError

__all__ = [
    "FMASK_CLEAR",
    "SourceRaster",
    "apply_mask",
    "detect_format",
    "guess_datetime",
    "read_rasters",
]

FMASK_CLEAR = (0, 1)
"""Fmask classes kept: 0 clear land, 1 clear water (2 shadow, 3 snow, 4 cloud, 255 fill)."""

_EXT = {
    ".tif": "geotiff",
    ".tiff": "geotiff",
    ".jp2": "jp2",
    ".nc": "netcdf",
    ".nc4": "netcdf",
    ".cdf": "netcdf",
    ".grib": "grib",
    ".grb": "grib",
    ".grib2": "grib",
    ".grb2": "grib",
}
_SPATIAL = {"x", "y", "lon", "lat", "longitude", "latitude", "rlon", "rlat"}


@dataclass
class SourceRaster:
    """One 2-D field in its source grid."""

    band: str
    """Layer suffix: a band name (``b04``) or ``var[_level][_mN]`` (``t_850_m0``)."""
    timestamp: datetime | None
    array: np.ndarray
    nodata: float | int | None
    transform: tuple[float, float, float, float, float, float] | None = None
    """Affine ``(a, b, c, d, e, f)`` of the array (None with ``geoloc``)."""
    crs_wkt: str | None = None
    geoloc: tuple[np.ndarray, np.ndarray] | None = None
    """2-D ``(lon, lat)`` of every pixel centre, for curvilinear grids."""
    href: str = ""


def detect_format(path: Path, declared: str = "auto") -> str:
    """The reader for ``path``: the declared format or one guessed from the extension."""
    if declared != "auto":
        if declared not in {"geotiff", "jp2", "netcdf", "grib"}:
            raise UnsupportedFormatError(
                f"{path}: format {declared!r} is not a raster format the ingest agent "
                "reads; use geotiff, jp2, netcdf or grib"
            )
        return declared
    fmt = _EXT.get(path.suffix.lower())
    if fmt is None:
        raise UnsupportedFormatError(
            f"{path}: unknown raster format {path.suffix or '(no extension)'!r}; "
            f"use one of {sorted(_EXT)} or declare format= on the event"
        )
    return fmt


def guess_datetime(name: str) -> datetime | None:
    """Acquisition time from a file or folder name: Sentinel-2 ``YYYYMMDDTHHMMSS`` or
    Landsat ``LE7PPPRRRYYYYDDD``; None when there is none."""
    m = re.search(r"(\d{8})T(\d{6})", name)
    if m:
        return datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    m = re.search(r"L[ETCO][0-9]\d{6}(\d{4})(\d{3})", name)
    if m:
        year, doy = int(m.group(1)), int(m.group(2))
        return datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=doy - 1)
    return None


def _band_name(path: Path) -> str:
    """``..._B04.jp2`` -> ``b04``; ``..._b3.tif`` -> ``b3``; else the lowercase stem."""
    stem = path.stem
    m = re.search(r"_([A-Za-z]+\d*[A-Za-z]?)$", stem)
    return _clean((m.group(1) if m else stem).lower())


def _clean(text: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "_", text.lower()).strip("_") or "band"


def read_rasters(path: Path, fmt: str, categorical: bool) -> list[SourceRaster]:
    """Every 2-D field of one file (bands, variables x levels x members x times)."""
    if fmt in ("geotiff", "jp2"):
        return _read_gdal(path, categorical)
    if fmt in ("netcdf", "grib"):
        return _read_xarray(path, fmt, categorical)
    raise UnsupportedFormatError(f"{path}: unsupported format {fmt!r}")


def _as_continuous(arr: np.ndarray, nodata: float | int | None) -> np.ndarray:
    """float32 with NaN for nodata; a float32 ``arr`` is reused (masked in place), so pass
    only arrays the caller owns (a fresh read)."""
    out = arr.astype(np.float32, copy=False)
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        out[arr == nodata] = np.nan
    return out


def _read_gdal(path: Path, categorical: bool) -> list[SourceRaster]:
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(path) as src:
            if src.crs is None or src.transform.is_identity:
                raise InputError(
                    f"{path}: has no CRS or geotransform; only georeferenced rasters can be "
                    "indexed (add a .prj/world file or declare crs= on the event)"
                )
            data = src.read()
            nodata = src.nodata
            transform = tuple(src.transform)[:6]
            crs_wkt = src.crs.to_wkt()
            descriptions = src.descriptions
    except RasterioError as exc:
        raise CorruptFileError(f"{path}: cannot be read as a raster: {exc}") from exc
    out = []
    base = _band_name(path)
    for i in range(data.shape[0]):
        band = base if data.shape[0] == 1 else _clean(descriptions[i] or f"{base}_{i + 1}")
        arr = data[i]
        if categorical:
            values: np.ndarray = arr
            nd: float | int | None = nodata
            if nd is not None and arr.dtype.kind in "iu":
                nd = int(nd)
        else:
            values, nd = _as_continuous(arr, nodata), float("nan")
        out.append(
            SourceRaster(band, None, values, nd, transform, crs_wkt, None, str(path))  # type: ignore[arg-type]
        )
    return out


def _open_dataset(path: Path, fmt: str) -> Any:
    import xarray as xr

    try:
        if fmt == "grib":
            return xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""})
        return xr.open_dataset(path)
    except Exception as exc:  # each backend raises its own types on damaged files
        raise CorruptFileError(f"{path}: cannot be opened as {fmt}: {exc}") from exc


def _read_xarray(path: Path, fmt: str, categorical: bool) -> list[SourceRaster]:
    ds = _open_dataset(path, fmt)
    out: list[SourceRaster] = []
    try:
        for name, var in ds.data_vars.items():
            if var.ndim < 2:
                continue
            out.extend(_split_variable(path, str(name), var, categorical))
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise CorruptFileError(f"{path}: cannot decode its variables: {exc}") from exc
    finally:
        ds.close()
    if not out:
        raise InputError(f"{path}: holds no 2-D (y, x) variable to index")
    return out


def _grid_of(path: Path, var: Any) -> tuple[Any, Any, Any]:
    """``(transform, crs_wkt, geoloc)`` of a variable's last two dims."""
    ydim, xdim = var.dims[-2:]
    coords = var.coords
    for lon_name, lat_name in (("longitude", "latitude"), ("lon", "lat")):
        if lon_name in coords and lat_name in coords:
            lon, lat = coords[lon_name], coords[lat_name]
            if lon.ndim == 2 and lat.ndim == 2:
                geoloc = (np.asarray(lon, np.float64), np.asarray(lat, np.float64))
                return None, None, geoloc
            if lon.dims == (xdim,) and lat.dims == (ydim,):
                return _regular(path, np.asarray(lon), np.asarray(lat)), _WGS84, None
    if xdim in coords and ydim in coords:
        try:
            crs = var.rio.crs
        except Exception:
            crs = None
        if crs is not None:
            return (
                _regular(path, np.asarray(coords[xdim]), np.asarray(coords[ydim])),
                crs.to_wkt(),
                None,
            )
    raise InputError(
        f"{path}: variable {var.name!r} has no lon/lat coordinates or grid mapping; "
        "cannot place it on the grid"
    )


_WGS84 = 'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433],AUTHORITY["EPSG","4326"]]'  # noqa: E501


def _regular(path: Path, x: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
    """Affine transform of 1-D, evenly spaced pixel-centre coordinates."""
    if len(x) < 2 or len(y) < 2:
        raise InputError(f"{path}: grid needs at least 2 x 2 cells, got {len(y)} x {len(x)}")
    dx, dy = float(x[1] - x[0]), float(y[1] - y[0])
    if not (np.allclose(np.diff(x), dx, rtol=1e-4) and np.allclose(np.diff(y), dy, rtol=1e-4)):
        raise InputError(f"{path}: coordinates are not evenly spaced; cannot build a transform")
    return (dx, 0.0, float(x[0]) - dx / 2, 0.0, dy, float(y[0]) - dy / 2)


def _split_variable(path: Path, name: str, var: Any, categorical: bool) -> list[SourceRaster]:
    transform, crs_wkt, geoloc = _grid_of(path, var)
    extra = [d for d in var.dims[:-2]]
    if any(d in _SPATIAL for d in extra):
        raise InputError(f"{path}: variable {name!r} has dims {var.dims}; expected (..., y, x)")
    values = var.values
    out: list[SourceRaster] = []
    for idx in np.ndindex(*values.shape[:-2]):
        parts = [_clean(name)]
        member: str | None = None
        ts: datetime | None = None
        for dim, i in zip(extra, idx, strict=True):
            coord = var.coords[dim].values[i] if dim in var.coords else i
            if np.issubdtype(np.asarray(coord).dtype, np.datetime64):
                ts = datetime.fromtimestamp(int(np.datetime64(coord, "s").astype(np.int64)), UTC)
            elif dim == "number":
                member = f"m{int(coord)}"
            else:
                c = float(coord)
                parts.append(str(int(c)) if c.is_integer() else _clean(f"{c:g}"))
        if member is not None:
            parts.append(member)
        arr = values[idx]
        if categorical:
            nd: float | int | None = None
            data = arr
        else:
            data, nd = arr.astype(np.float32), float("nan")
        out.append(
            SourceRaster("_".join(parts), ts, data, nd, transform, crs_wkt, geoloc, str(path))
        )  # type: ignore[arg-type]
    return out


def apply_mask(rasters: Sequence[SourceRaster], mask: np.ndarray, href: str) -> None:
    """Blank every pixel whose Fmask class is not clear land/water, in place."""
    bad = ~np.isin(mask, FMASK_CLEAR)
    for r in rasters:
        if r.array.shape != mask.shape:
            raise InputError(
                f"mask {href} has shape {mask.shape} but band {r.band} has {r.array.shape}; "
                "the mask must be on the scene's grid"
            )
        if r.array.dtype.kind == "f":
            r.array = np.where(bad, np.float32(np.nan), r.array)
        elif r.nodata is not None:
            r.array = np.where(bad, r.array.dtype.type(r.nodata), r.array)
        else:
            raise InputError(f"band {r.band} has no nodata value to mark masked pixels")
