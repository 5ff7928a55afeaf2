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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from gravitas.schemas.errors import CorruptFileError, InputError, UnsupportedFormatError
from gravitas.storage.readers.cf import find_axes, regular_grid
from gravitas.storage.readers.grib_grid import projected_grid
from gravitas.storage.readers.masks import masked_pixels
from gravitas.storage.readers.names import (
    band_of,
    is_categorical_band,
    product_nodata,
    product_time,
)

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
    categorical: bool = False
    """Classes or flags (masks, QA, labels): nearest resampling, integer values kept."""


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
    """Acquisition time from a file or folder name (the standard product namings of
    Landsat, Sentinel-2, MODIS, HLS and EMIT; see :mod:`gravitas.storage.readers.names`);
    None when there is none."""
    return product_time(name)


def _band_name(path: Path) -> str:
    """``..._B04.jp2`` -> ``b04``; ``..._SR_B4.TIF`` -> ``sr_b4``; ``..._b3.tif`` -> ``b3``;
    else the last ``_`` token or the lowercase stem."""
    named = band_of(path.name)
    if named is not None:
        return _clean(named.band)
    stem = path.stem
    m = re.search(r"_([A-Za-z]+\d*[A-Za-z]?)$", stem)
    return _clean((m.group(1) if m else stem).lower())


def _clean(text: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "_", text.lower()).strip("_") or "band"


def read_rasters(
    path: Path,
    fmt: str,
    categorical: bool,
    *,
    band: str | None = None,
    nodata: float | None = None,
) -> list[SourceRaster]:
    """Every 2-D field of one file (bands, variables x levels x members x times).

    ``band`` names a single-band file's band (default: from its product name);
    ``nodata`` is the fill value of a file that carries no nodata tag (default: its
    product's convention, e.g. 0 for Landsat Collection 1/2 and Sentinel-2 bands)."""
    if fmt in ("geotiff", "jp2"):
        return _read_gdal(path, categorical, band=band, nodata=nodata)
    if fmt in ("netcdf", "grib"):
        return _read_xarray(path, fmt, categorical, nodata=nodata)
    raise UnsupportedFormatError(f"{path}: unsupported format {fmt!r}")


def _as_continuous(arr: np.ndarray, nodata: float | int | None) -> np.ndarray:
    """float32 with NaN for nodata; a float32 ``arr`` is reused (masked in place), so pass
    only arrays the caller owns (a fresh read)."""
    out = arr.astype(np.float32, copy=False)
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        out[arr == nodata] = np.nan
    return out


def _read_gdal(
    path: Path,
    categorical: bool,
    *,
    band: str | None = None,
    nodata: float | None = None,
) -> list[SourceRaster]:
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
            file_nodata = src.nodata
            transform = tuple(src.transform)[:6]
            crs_wkt = src.crs.to_wkt()
            descriptions = src.descriptions
    except RasterioError as exc:
        raise CorruptFileError(f"{path}: cannot be read as a raster: {exc}") from exc
    fill = file_nodata if file_nodata is not None else nodata
    if fill is None:
        fill = product_nodata(path.name)
    out = []
    base = _clean(band) if band else _band_name(path)
    for i in range(data.shape[0]):
        name = base if data.shape[0] == 1 else _clean(descriptions[i] or f"{base}_{i + 1}")
        arr = data[i]
        cat = categorical or is_categorical_band(name)
        if cat:
            values: np.ndarray = arr
            nd: float | int | None = fill
            if nd is not None and arr.dtype.kind in "iu":
                nd = int(nd)
        else:
            values, nd = _as_continuous(arr, fill), float("nan")
        out.append(
            SourceRaster(name, None, values, nd, transform, crs_wkt, None, str(path), cat)  # type: ignore[arg-type]
        )
    return out


def _open_datasets(path: Path, fmt: str) -> list[Any]:
    """The datasets of a file: one for NetCDF; one per GRIB hypercube (messages whose
    keys differ, e.g. another level type, do not fit one dataset and are not dropped)."""
    import xarray as xr

    try:
        if fmt == "grib":
            import cfgrib

            return list(cfgrib.open_datasets(str(path), backend_kwargs={"indexpath": ""}))
        return [xr.open_dataset(path)]
    except Exception as exc:  # each backend raises its own types on damaged files
        raise CorruptFileError(f"{path}: cannot be opened as {fmt}: {exc}") from exc


def _read_xarray(
    path: Path, fmt: str, categorical: bool, *, nodata: float | None = None
) -> list[SourceRaster]:
    out: list[SourceRaster] = []
    for ds in _open_datasets(path, fmt):
        try:
            seen = {r.band for r in out}
            for name, var in ds.data_vars.items():
                if var.ndim < 2:
                    continue
                if find_axes(var) is None and var.ndim == 2:
                    continue  # bounds (time, bnds) and other helper variables
                fields = _split_variable(path, str(name), var, categorical, nodata)
                level_type = str(var.attrs.get("GRIB_typeOfLevel", ""))
                if level_type and any(r.band in seen for r in fields):
                    for r in fields:  # the same short name on another level type
                        r.band = _clean(f"{r.band}_{level_type}")
                out.extend(fields)
        except (ValueError, KeyError, OSError, RuntimeError) as exc:
            raise CorruptFileError(f"{path}: cannot decode its variables: {exc}") from exc
        finally:
            ds.close()
    if not out:
        raise InputError(f"{path}: holds no 2-D (y, x) variable to index")
    if fmt == "grib":
        _check_all_messages(path, len(out))
    fields_at = [(r.band, r.timestamp) for r in out]
    if len(set(fields_at)) != len(fields_at):
        dup = sorted({b for b, t in fields_at if fields_at.count((b, t)) > 1})
        raise InputError(
            f"{path}: several messages give the same field {dup[:5]} at the same time; "
            "split the file so each field appears once"
        )
    return out


def _check_all_messages(path: Path, fields: int) -> None:
    """Every GRIB message became a field: cfgrib keeps the first of messages that repeat
    a field and skips ones it cannot place, silently; refuse instead of dropping data."""
    import eccodes

    with path.open("rb") as fh:
        messages = int(eccodes.codes_count_in_file(fh))
    if fields < messages:
        raise InputError(
            f"{path}: {messages} GRIB messages but only {fields} distinct fields (messages "
            "repeat the same field, variable/level/member/time, or cannot be decoded); "
            "split the file so each field appears once"
        )


def _grid_of(path: Path, var: Any) -> tuple[Any, Any, Any, Any]:
    """``(transform, crs_wkt, geoloc, grid)`` of a variable's last two dims; ``grid``
    orients the array north-up when the transform is regular."""
    axes = find_axes(var)
    projected = projected_grid(var)  # Lambert / polar stereographic GRIB: exact transform
    if projected is not None:
        return projected.transform, projected.crs_wkt, None, projected
    if axes is not None and axes.geographic:
        if axes.x.ndim == 2:
            geoloc = (np.asarray(axes.x, np.float64), np.asarray(axes.y, np.float64))
            return None, None, geoloc, None
        grid = regular_grid(f"{path}: {var.name}", axes.x.values, axes.y.values, geographic=True)
        return grid.transform, _WGS84, None, grid
    if axes is not None:
        try:
            crs = var.rio.crs
        except Exception:
            crs = None
        if crs is not None:
            grid = regular_grid(
                f"{path}: {var.name}", axes.x.values, axes.y.values, geographic=False
            )
            return grid.transform, crs.to_wkt(), None, grid
    raise InputError(
        f"{path}: variable {var.name!r} has no lon/lat coordinates (CF units degrees_east/"
        "degrees_north, standard_name or axis) or grid mapping; cannot place it on the grid"
    )


_WGS84 = 'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433],AUTHORITY["EPSG","4326"]]'  # noqa: E501


def _as_utc(value: Any) -> datetime | None:
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.datetime64) or np.isnat(arr):
        return None
    return datetime.fromtimestamp(int(arr.astype("datetime64[s]").astype(np.int64)), UTC)


def _time_of(var: Any, extra: list[str], idx: tuple[int, ...]) -> datetime | None:
    """The valid time of one 2-D field: cfgrib's ``valid_time`` (reference time plus
    step) where there is one, else a datetime dimension, else a scalar time coordinate."""
    pos = dict(zip(extra, idx, strict=True))
    for name in ("valid_time", "time"):
        coord = var.coords.get(name)
        if coord is None or not np.issubdtype(coord.dtype, np.datetime64):
            continue
        if all(d in pos for d in coord.dims):
            return _as_utc(coord.values[tuple(pos[d] for d in coord.dims)])
    for dim, i in pos.items():
        coord = var.coords.get(dim)
        if coord is not None and np.issubdtype(coord.dtype, np.datetime64):
            return _as_utc(coord.values[i])
    return None


def _split_variable(
    path: Path, name: str, var: Any, categorical: bool, nodata: float | None = None
) -> list[SourceRaster]:
    transform, crs_wkt, geoloc, grid = _grid_of(path, var)
    extra = [str(d) for d in var.dims[:-2]]
    if len(extra) != len(set(extra)):
        raise InputError(f"{path}: variable {name!r} repeats a dimension: {var.dims}")
    values = var.values
    if grid is not None:
        values = grid.orient(values)
    fill = nodata  # xarray already turned _FillValue / missing_value into NaN
    out: list[SourceRaster] = []
    for idx in np.ndindex(*values.shape[:-2]):
        parts = [_clean(name)]
        member: str | None = None
        ts = _time_of(var, extra, idx)
        for dim, i in zip(extra, idx, strict=True):
            coord = var.coords[dim].values[i] if dim in var.coords else i
            if np.issubdtype(np.asarray(coord).dtype, np.datetime64) or dim == "step":
                continue
            if dim == "number":
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
            if fill is not None and np.isfinite(fill):
                data[arr == fill] = np.nan
        out.append(
            SourceRaster(
                "_".join(parts), ts, data, nd, transform, crs_wkt, geoloc, str(path), categorical
            )
        )  # type: ignore[arg-type]
    return out


def apply_mask(
    rasters: Sequence[SourceRaster], mask: np.ndarray, href: str, convention: str = "fmask"
) -> None:
    """Blank every pixel of the data bands that ``mask`` hides under ``convention``
    (see :mod:`gravitas.storage.readers.masks`), in place. Categorical rasters (the
    mask itself, labels, other QA bands) are left as they are."""
    bad = masked_pixels(mask, convention, href)
    for r in rasters:
        if r.categorical:
            continue
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
