"""EMIT L1B radiance NetCDF: read into a :class:`HyperspectralScene`, and write the layout.

EMIT's L1B product keeps ``radiance`` (downtrack, crosstrack, bands) at the root, band
metadata in group ``sensor_band_parameters`` (``wavelengths``, ``fwhm``,
``good_wavelengths``), geometry in group ``location`` (``glt_x``, ``glt_y`` on the
ortho grid, 1-based, 0 = no data; ``lat``, ``lon`` per sensor pixel) and the ortho grid
in global attributes ``geotransform`` (GDAL order) and ``spatial_ref`` (WKT).
The radiance is read into memory (the filter needs whole columns); pass ``bands`` to
read only the filter window. A band subset of a deflate/shuffle-chunked radiance (EMIT's
own layout) is read chunk by chunk on a thread pool (:mod:`.hdf5_chunks`); any other
layout, or a chunk that will not decode, goes through netCDF4's general hyperslab read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
from xarray.backends.locks import HDF5_LOCK

from gravitas.schemas.errors import CorruptFileError
from gravitas.storage.readers.errors import NotHyperspectralFileError
from gravitas.storage.readers.hdf5_chunks import ChunkPlan, plan_chunked_read
from gravitas.storage.readers.scene import GeoTransform, HyperspectralScene

MIN_BANDS = 10
FILL_VALUE = -9999.0
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _open(path: Path) -> netCDF4.Dataset:
    try:
        return netCDF4.Dataset(path, "r")
    except FileNotFoundError as exc:
        raise CorruptFileError(f"{path}: no such file") from exc
    except OSError as exc:
        if _has_hdf5_signature(path):
            raise CorruptFileError(
                f"{path}: an HDF5/NetCDF4 file that cannot be opened ({exc}); it is truncated "
                "or damaged, fetch it again"
            ) from exc
        raise NotHyperspectralFileError(
            f"{path}: not a NetCDF/HDF5 file ({exc}); EMIT L1B radiance is NetCDF4"
        ) from exc


def _has_hdf5_signature(path: Path) -> bool:
    """The HDF5 format signature at offset 0 (files without a user block)."""
    try:
        with path.open("rb") as fh:
            return fh.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


def read_emit_l1b(path: str | Path, *, bands: np.ndarray | None = None) -> HyperspectralScene:
    """Read an EMIT L1B radiance NetCDF; ``bands`` (bool mask) reads only those bands.

    Fill values (-9999) become NaN. Raises :class:`NotHyperspectralFileError` for a file
    without a 3-D ``radiance`` and :class:`CorruptFileError` for a broken layout. HDF5 is
    not thread-safe: the read holds xarray's HDF5 lock, like every xarray NetCDF read.
    """
    p = Path(path)
    with HDF5_LOCK:
        scene, var_idx, fill = _read_layout(p, bands)
    with HDF5_LOCK:
        plan = plan_chunked_read(p, "radiance")
    rad: np.ndarray | None = None
    failed: CorruptFileError | None = None
    if isinstance(plan, ChunkPlan):
        try:
            rad = plan.read_bands(var_idx, nan_value=fill)  # no lock: threads decode
        except CorruptFileError as exc:
            failed = exc
    if rad is None:  # layout not planned, or a chunk failed: the general reader decides
        try:
            with HDF5_LOCK:
                rad = _read_bands_netcdf4(p, var_idx)
        except (OSError, RuntimeError) as exc:
            if failed is not None:
                raise failed from None
            raise CorruptFileError(
                f"{p}: radiance cannot be read ({exc}); the file is damaged, fetch it again"
            ) from None
        rad[rad == fill] = np.nan
    return replace(scene, radiance=rad)


def _read_bands_netcdf4(path: Path, idx: np.ndarray) -> np.ndarray:
    """netCDF4's hyperslab read of bands ``idx`` (float32, raw fill values kept)."""
    with _open(path) as ds:
        var = ds.variables["radiance"]
        var.set_auto_mask(False)
        lo, hi = int(idx.min()), int(idx.max()) + 1
        return np.asarray(var[:, :, lo:hi], dtype=np.float32)[:, :, idx - lo]


def _read_layout(
    path: Path, bands: np.ndarray | None
) -> tuple[HyperspectralScene, np.ndarray, float]:
    """Everything but the radiance (left empty): the scene, band indices to read, fill."""
    with _open(path) as ds:
        if "radiance" not in ds.variables:
            raise NotHyperspectralFileError(
                f"{path}: no 'radiance' variable at the root; not an EMIT L1B radiance file "
                f"(variables: {sorted(ds.variables)[:8]})"
            )
        var = ds.variables["radiance"]
        if var.ndim != 3 or var.shape[2] < MIN_BANDS:
            raise NotHyperspectralFileError(
                f"{path}: radiance has shape {var.shape}; expected (downtrack, crosstrack, "
                f">= {MIN_BANDS} bands)"
            )
        groups = ds.groups
        if "sensor_band_parameters" not in groups:
            raise CorruptFileError(
                f"{path}: group 'sensor_band_parameters' (wavelengths, fwhm) is missing"
            )
        sbp = groups["sensor_band_parameters"].variables
        if "wavelengths" not in sbp:
            raise CorruptFileError(f"{path}: sensor_band_parameters lacks 'wavelengths'")
        wl = np.asarray(sbp["wavelengths"][:], dtype=np.float64)
        fwhm = np.asarray(sbp["fwhm"][:], dtype=np.float64) if "fwhm" in sbp else None
        if "good_wavelengths" in sbp:
            good = np.asarray(sbp["good_wavelengths"][:]).astype(bool)
        else:
            good = np.ones(wl.size, dtype=bool)
        if wl.size != var.shape[2]:
            raise CorruptFileError(
                f"{path}: {wl.size} wavelengths for {var.shape[2]} radiance bands"
            )
        idx: np.ndarray = np.arange(wl.size)
        if bands is not None:
            sel = np.asarray(bands, dtype=bool)
            if sel.shape != (wl.size,):
                raise CorruptFileError(
                    f"{path}: band mask of shape {sel.shape} for {wl.size} bands"
                )
            idx = np.flatnonzero(sel)
            if idx.size == 0:
                raise CorruptFileError(f"{path}: band mask selects no band")
            wl, good = wl[idx], good[idx]
            fwhm = None if fwhm is None else fwhm[idx]
        fill = float(getattr(var, "_FillValue", FILL_VALUE))
        glt = lat = lon = None
        if "location" in groups:
            loc = groups["location"].variables
            if "glt_x" in loc and "glt_y" in loc:
                glt = np.stack(
                    (np.asarray(loc["glt_x"][:], np.int32), np.asarray(loc["glt_y"][:], np.int32)),
                    axis=-1,
                )
            lat = np.asarray(loc["lat"][:], np.float64) if "lat" in loc else None
            lon = np.asarray(loc["lon"][:], np.float64) if "lon" in loc else None
        attrs = {k: ds.getncattr(k) for k in ds.ncattrs()}
    gt_raw = attrs.get("geotransform")
    geotransform: GeoTransform | None = None
    if gt_raw is not None:
        gt = np.asarray(gt_raw, dtype=np.float64).ravel()
        if gt.size != 6:
            raise CorruptFileError(f"{path}: geotransform has {gt.size} numbers, expected 6")
        geotransform = tuple(float(v) for v in gt)  # type: ignore[assignment]
    crs = attrs.get("spatial_ref")
    meta = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in attrs.items()}
    meta["format"] = "EMIT L1B NetCDF"
    scene = HyperspectralScene(
        radiance=np.empty((0, 0, 0), np.float32),
        wavelengths=wl,
        fwhm=fwhm,
        good_bands=good,
        glt=glt,
        geotransform=geotransform,
        crs_wkt=None if crs is None else str(crs),
        lat=lat,
        lon=lon,
        path=path,
        metadata=meta,
    )
    return scene, idx, fill


def write_emit_l1b(
    path: Path,
    radiance: np.ndarray,
    *,
    wavelengths: np.ndarray,
    fwhm: np.ndarray,
    geotransform: GeoTransform,
    crs_wkt: str,
    good_wavelengths: np.ndarray | None = None,
    title: str = "EMIT L1B radiance",
    radiance_encoding: Mapping[str, Any] | None = None,
) -> Path:
    """Write a (downtrack, crosstrack, bands) cube in EMIT's L1B NetCDF layout (north-up GLT).

    The sensor grid is taken to be the north-up output grid itself: an identity GLT and
    lat/lon of the pixel centres from ``geotransform``. The radiance is chunked 64 x 64 x
    bands with zlib level 1 and shuffle; ``radiance_encoding`` replaces those
    ``netCDF4.Dataset.createVariable`` options (e.g. ``{"contiguous": True}``).
    """
    rows, cols, nb = radiance.shape
    gt = np.asarray(geotransform, dtype=np.float64)
    with HDF5_LOCK, netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("downtrack", rows)
        ds.createDimension("crosstrack", cols)
        ds.createDimension("bands", nb)
        ds.createDimension("ortho_y", rows)
        ds.createDimension("ortho_x", cols)
        ds.title = title
        ds.geotransform = gt
        ds.spatial_ref = crs_wkt
        ds.spatialResolution = float(abs(gt[1]))
        encoding: dict[str, Any] = {
            "zlib": True, "complevel": 1, "chunksizes": (min(rows, 64), min(cols, 64), nb)
        }  # fmt: skip
        if radiance_encoding is not None:
            encoding = dict(radiance_encoding)
        var = ds.createVariable(
            "radiance", "f4", ("downtrack", "crosstrack", "bands"),
            fill_value=np.float32(FILL_VALUE), **encoding,
        )  # fmt: skip
        var.units = "uW/cm^2/SR/nm"
        var.long_name = "Radiance Data"
        var[:] = np.where(np.isfinite(radiance), radiance, FILL_VALUE).astype(np.float32)
        sbp = ds.createGroup("sensor_band_parameters")
        sbp.createVariable("wavelengths", "f4", ("bands",))[:] = wavelengths
        sbp.createVariable("fwhm", "f4", ("bands",))[:] = fwhm
        good = np.ones(nb, dtype=np.uint8) if good_wavelengths is None else good_wavelengths
        sbp.createVariable("good_wavelengths", "u1", ("bands",))[:] = np.asarray(good, np.uint8)
        loc = ds.createGroup("location")
        yy, xx = np.mgrid[0:rows, 0:cols]
        loc.createVariable("glt_x", "i4", ("ortho_y", "ortho_x"))[:] = xx + 1
        loc.createVariable("glt_y", "i4", ("ortho_y", "ortho_x"))[:] = yy + 1
        loc.createVariable("lon", "f8", ("downtrack", "crosstrack"))[:] = (
            gt[0] + (xx + 0.5) * gt[1] + (yy + 0.5) * gt[2]
        )
        loc.createVariable("lat", "f8", ("downtrack", "crosstrack"))[:] = (
            gt[3] + (xx + 0.5) * gt[4] + (yy + 0.5) * gt[5]
        )
    return path
