"""The methane retrieval of one scene, without a node: read, filter, georeference, find plumes.

Shared by the methane agent and ``gravitas methane``. The scene (EMIT L1B NetCDF or an
ENVI radiance file with a GLT) is read in the filter window only; the unit absorption
target comes from mag1c's real CH4 LUT at the scene's band centres and FWHM; the matched
filter runs in sensor geometry; the enhancement is mapped through the GLT onto the
scene's north-up grid, where plumes are labelled (so their outlines are geographic).

Example::

    product = retrieve_scene(Path("EMIT_L1B_RAD_001_20220815T042838_2222703_003.nc"))
    write_cog(product.grid, Path("ch4_enhancement.tif"), product.acquired)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from gravitas.kernels.ch4_target import select_window, unit_absorption_target
from gravitas.kernels.matched_filter import MatchedFilterResult, retrieve
from gravitas.kernels.plumes import MIN_PIXELS, PlumeRecord, find_plumes
from gravitas.schemas.errors import InputError
from gravitas.storage.readers.emit import read_emit_l1b
from gravitas.storage.readers.envi import find_envi_pair, read_ch4_lut, read_envi_scene
from gravitas.storage.readers.errors import EnviHeaderError, NotHyperspectralFileError
from gravitas.storage.readers.scene import GeoRaster, HyperspectralScene, georeference

__all__ = [
    "LAYER",
    "UNIT",
    "MethaneProduct",
    "plume_features",
    "read_window",
    "retrieve_scene",
    "scene_datetime",
    "write_cog",
]

LAYER = "ch4_enhancement"
"""Pixel-store layer (and COG name) of the enhancement."""
UNIT = "ppm m"
"""Unit of the enhancement (CH4 column enhancement, ppm times metres)."""
NETCDF_SUFFIXES = (".nc", ".nc4", ".h5", ".hdf5", ".netcdf")

ProgressFn = Callable[[str, float], None]
"""``progress(stage, fraction)``: stage is reading, retrieval, plumes (fraction 0..1)."""


def _quiet(_stage: str, _fraction: float) -> None:
    """Default progress sink."""


@dataclass(frozen=True)
class MethaneProduct:
    """The outputs of one retrieval, on the sensor grid and on the scene's north-up grid."""

    path: Path
    """The radiance file."""
    sensor: MatchedFilterResult
    """Enhancement, albedo and uncertainty in sensor geometry (rows, cols)."""
    grid: GeoRaster
    """The enhancement (ppm·m, float32, NaN = no data) on the GLT's north-up grid."""
    labels: np.ndarray
    """Plume labels on :attr:`grid` (0 = background, 1..n largest first)."""
    plumes: list[PlumeRecord]
    """One record per plume (label, pixels, area, max, mean, IME)."""
    background_mean_ppm_m: float
    """Mean enhancement of valid grid pixels outside every plume."""
    max_ppm_m: float
    """Largest enhancement in the grid."""
    acquired: datetime
    """Acquisition time of the scene (UTC)."""
    bands: int
    """Number of bands the filter used."""
    retrieval_s: float
    """Wall time of the matched filter alone."""


def _emit_band_table(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Wavelengths and good-band flags of an EMIT file, without reading the radiance."""
    import netCDF4
    from xarray.backends.locks import HDF5_LOCK

    try:
        with HDF5_LOCK, netCDF4.Dataset(path, "r") as ds:
            sbp = ds.groups["sensor_band_parameters"].variables
            wl = np.asarray(sbp["wavelengths"][:], dtype=np.float64)
            good = (
                np.asarray(sbp["good_wavelengths"][:]).astype(bool)
                if "good_wavelengths" in sbp
                else np.ones(wl.size, dtype=bool)
            )
    except (OSError, KeyError, IndexError):
        return None  # the full reader raises the precise error
    return wl, good


def read_window(path: Path, window: tuple[float, float]) -> HyperspectralScene:
    """Read a radiance scene (EMIT NetCDF or ENVI), keeping only good bands in ``window``.

    Raises :class:`NotHyperspectralFileError` for files that hold no radiance cube and
    :class:`EmptyWindowError` when no good band lies in the window.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such file; give the path of a radiance scene")
    if path.suffix.lower() in NETCDF_SUFFIXES:
        table = _emit_band_table(path)
        if table is None:
            read_emit_l1b(path)  # raises the reader's specific error
            raise NotHyperspectralFileError(f"{path}: no EMIT band table")
        wl, good = table
        keep = select_window(wl, window) & good
        select_window(wl[keep], window)  # EmptyWindowError if only bad bands were left
        return read_emit_l1b(path, bands=keep)
    try:
        find_envi_pair(path)
    except EnviHeaderError as exc:
        raise NotHyperspectralFileError(
            f"{path}: not an EMIT L1B NetCDF (.nc) or an ENVI radiance file with a .hdr; "
            "the methane retrieval needs a hyperspectral radiance cube"
        ) from exc
    scene = read_envi_scene(path)
    keep = select_window(scene.wavelengths, window) & np.asarray(scene.good_bands, dtype=bool)
    select_window(scene.wavelengths[keep], window)
    return HyperspectralScene(
        radiance=np.asarray(scene.radiance[:, :, keep], dtype=np.float32),
        wavelengths=scene.wavelengths[keep],
        fwhm=None if scene.fwhm is None else scene.fwhm[keep],
        good_bands=np.ones(int(keep.sum()), dtype=bool),
        glt=scene.glt,
        geotransform=scene.geotransform,
        crs_wkt=scene.crs_wkt,
        path=scene.path,
        metadata=scene.metadata,
    )


def scene_datetime(scene: HyperspectralScene, path: Path) -> datetime:
    """Acquisition time: ``time_coverage_start`` (EMIT), the file name, else its mtime."""
    from gravitas.storage.catalog.files import datetime_from_name

    raw = scene.metadata.get("time_coverage_start")
    if isinstance(raw, str) and raw:
        try:
            stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
        except ValueError:
            pass
    named = datetime_from_name(path)
    if named is not None:
        return named
    return datetime.fromtimestamp(int(path.stat().st_mtime), UTC)


def _pixel_area(grid: GeoRaster) -> np.ndarray | float:
    from rasterio.crs import CRS

    from gravitas.storage.plumes_vector import geographic_pixel_area_m2

    rows, cols = grid.array.shape
    if CRS.from_wkt(grid.crs_wkt).is_geographic:
        return geographic_pixel_area_m2(grid.geotransform, rows, cols)
    return abs(grid.geotransform[1] * grid.geotransform[5])


def retrieve_scene(
    path: Path,
    *,
    window: tuple[float, float] = (2122.0, 2488.0),
    iterations: int = 30,
    sparse: bool = True,
    albedo: bool = True,
    threshold: float | None = None,
    min_pixels: int = MIN_PIXELS,
    lut_dir: Path | None = None,
    progress: ProgressFn = _quiet,
) -> MethaneProduct:
    """Run the whole retrieval of one scene; see the module docstring."""
    from gravitas.storage.sampledata import fetch

    progress("reading", 0.0)
    scene = read_window(path, window)
    if scene.glt is None or scene.geotransform is None or not scene.crs_wkt:
        raise NotHyperspectralFileError(
            f"{path}: no geometry lookup table (GLT), geotransform or CRS; the enhancement "
            "cannot be georeferenced (use an EMIT L1B file with its location group)"
        )
    lut = read_ch4_lut(lut_dir if lut_dir is not None else fetch("ch4_lut"))
    target = unit_absorption_target(lut, scene.wavelengths, scene.fwhm)
    progress("reading", 1.0)
    progress("retrieval", 0.0)
    start = time.perf_counter()
    result = retrieve(
        scene.radiance,
        target,
        iterations=iterations,
        sparse=sparse,
        albedo=albedo,
        progress=lambda done, total: progress("retrieval", done / max(total, 1)),
    )
    took = time.perf_counter() - start
    grid = georeference(result.enhancement, scene.glt, scene.geotransform, scene.crs_wkt)
    progress("plumes", 0.0)
    labels, plumes = find_plumes(
        grid.array, threshold=threshold, min_pixels=min_pixels, pixel_area_m2=_pixel_area(grid)
    )
    valid = np.isfinite(grid.array)
    background = grid.array[valid & (labels == 0)]
    progress("plumes", 1.0)
    return MethaneProduct(
        path=path,
        sensor=result,
        grid=grid,
        labels=labels,
        plumes=plumes,
        background_mean_ppm_m=float(background.mean()) if background.size else float("nan"),
        max_ppm_m=float(np.nanmax(grid.array)) if valid.any() else float("nan"),
        acquired=scene_datetime(scene, path),
        bands=int(scene.radiance.shape[2]),
        retrieval_s=took,
    )


def write_cog(grid: GeoRaster, path: Path, when: datetime | None = None) -> Path:
    """Write the enhancement as a Cloud-Optimized GeoTIFF (float32, nodata NaN, overviews)."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    rows, cols = grid.array.shape
    profile: dict[str, Any] = {
        "driver": "COG",
        "width": cols,
        "height": rows,
        "count": 1,
        "dtype": "float32",
        "crs": CRS.from_wkt(grid.crs_wkt),
        "transform": Affine.from_gdal(*grid.geotransform),
        "nodata": float("nan"),
        "compress": "deflate",
        "predictor": 3,
        "blocksize": 256,
        "overview_resampling": "average",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(grid.array.astype(np.float32), 1)
        dst.set_band_description(1, LAYER)
        dst.units = (UNIT,)
        if when is not None:
            stamp = when.astimezone(UTC).strftime("%Y:%m:%d %H:%M:%S")
            dst.update_tags(TIFFTAG_DATETIME=stamp)
    return path


def plume_features(product: MethaneProduct, scene_id: str) -> dict[str, Any]:
    """The plumes as a GeoJSON FeatureCollection in EPSG:4326 with ``plume_id`` properties."""
    from rasterio.crs import CRS
    from rasterio.warp import transform_geom

    from gravitas.storage.plumes_vector import plume_polygons

    grid = product.grid
    fc = plume_polygons(product.labels, grid.geotransform, product.plumes)
    crs = CRS.from_wkt(grid.crs_wkt)
    for feature in fc["features"]:
        if crs.to_epsg() != 4326:
            feature["geometry"] = transform_geom(crs, "EPSG:4326", feature["geometry"])
        props = feature["properties"]
        props["plume_id"] = f"{scene_id}-p{props['label']}"
        props["scene_id"] = scene_id
    return fc
