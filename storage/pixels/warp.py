"""Warp a source raster ONCE onto the nested grid and cut it into 256 x 256 blocks.

The destination is the block-aligned window (whole blocks) covering the source's
lon/lat bounds at the layer's level, so GDAL writes straight into block arrays with the
grid's own north-up transform (:func:`gravitas.kernels.grid.window_transform`).
Resampling: nearest for categorical layers; for continuous ones average (an
area-weighted mean of the source pixels a grid pixel overlaps) when the source is finer
than the grid level, else nearest (each grid pixel lies inside one source pixel: the
native level is never coarser than the source, so this is the usual case). A WGS 84
source that already lies on the grid at the level (same pixel size, whole-pixel offset) is
copied instead of reprojected: nearest resampling gives the same pixels. Other float
sources with an affine transform that resample nearest skip GDAL too
(:mod:`gravitas.storage.pixels.fastwarp`: exact transforms on a lattice, bilinear in
between, one parallel gather).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from gravitas.kernels.grid import (
    M_PER_DEG,
    bbox_to_block_range,
    native_level,
    native_level_m,
    window_transform,
)
from gravitas.kernels.morton import morton_encode
from gravitas.schemas.errors import InputError
from gravitas.schemas.grid import BLOCK_SIZE, pixel_size
from gravitas.storage.pixels.sources import SourceRaster

__all__ = [
    "MAX_WINDOW_PIXELS",
    "WarpedRaster",
    "native_level_of",
    "source_bounds",
    "warp",
    "warp_many",
]

MAX_WINDOW_PIXELS = 400_000_000
"""Refuse to warp a scene into more grid pixels than this in one go."""


@dataclass(frozen=True)
class WarpedRaster:
    """A source raster on the grid: a block-aligned window at ``level``."""

    band: str
    level: int
    bx0: int
    """Block column of the window's west edge."""
    by1: int
    """Block row of the window's NORTH edge (row 0 of ``array``)."""
    array: np.ndarray
    nodata: float | int | None

    @property
    def shape_blocks(self) -> tuple[int, int]:
        """(block rows, block columns) of the window."""
        return self.array.shape[0] // BLOCK_SIZE, self.array.shape[1] // BLOCK_SIZE

    def valid(self, arr: np.ndarray) -> np.ndarray:
        """Boolean mask of pixels that hold data."""
        if arr.dtype.kind == "f":
            return ~np.isnan(arr)
        if self.nodata is None:
            return np.ones(arr.shape, bool)
        return arr != self.nodata

    def block_counts(self) -> np.ndarray:
        """Valid pixels of every block, shape ``shape_blocks`` (row 0 = north), one pass."""
        rows, cols = self.shape_blocks
        b = BLOCK_SIZE
        valid = self.valid(self.array).reshape(rows, b, cols, b)
        return np.count_nonzero(valid, axis=(1, 3))

    def block_view(self, r: int, c: int) -> np.ndarray:
        """The block at window row ``r``, column ``c`` (a view into ``array``)."""
        b = BLOCK_SIZE
        return self.array[r * b : (r + 1) * b, c * b : (c + 1) * b]

    def blocks(self) -> Iterator[tuple[int, int, int, np.ndarray]]:
        """``(morton, bx, by, array)`` of every block holding at least one valid pixel."""
        rows, cols = self.shape_blocks
        b = BLOCK_SIZE
        for r in range(rows):
            by = self.by1 - r
            for c in range(cols):
                arr = self.array[r * b : (r + 1) * b, c * b : (c + 1) * b]
                if self.valid(arr).any():
                    bx = self.bx0 + c
                    yield int(morton_encode(bx, by)), bx, by, np.ascontiguousarray(arr)


@functools.lru_cache(maxsize=64)
def _crs(wkt: str | None) -> object:
    """The rasterio CRS of a WKT (None = WGS 84); cached: parsing costs about 0.1 ms and
    every band asks several times."""
    from rasterio.crs import CRS

    return CRS.from_wkt(wkt) if wkt else CRS.from_epsg(4326)


def _normalise_lon(r: SourceRaster) -> None:
    """Move a geographic 0..360 grid to -180..180 (in place)."""
    if r.geoloc is not None:
        lon, lat = r.geoloc
        if np.nanmax(lon) > 180.0:
            r.geoloc = (np.where(lon > 180.0, lon - 360.0, lon), lat)
        return
    assert r.transform is not None
    a, b, c, d, e, f = r.transform
    if not _crs(r.crs_wkt).is_geographic or a <= 0:  # type: ignore[attr-defined]
        return
    width = r.array.shape[-1]
    centres = c + a * (np.arange(width) + 0.5)
    if centres.max() <= 180.0:
        return
    if centres.min() > 180.0:
        r.transform = (a, b, c - 360.0, d, e, f)
        return
    if abs(a * width - 360.0) >= a / 2:  # float32 spacing often sums to 360.003
        raise InputError(
            f"{r.href}: longitudes {centres.min():g}..{centres.max():g} cross 180 on a "
            "non-global grid; split the file at the antimeridian"
        )
    k = int(np.argmax(centres >= 180.0))
    r.array = np.concatenate([r.array[..., k:], r.array[..., :k]], axis=-1)
    r.transform = (a, b, c + a * k - 360.0, d, e, f)


def source_bounds(r: SourceRaster) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of the raster in degrees (not clipped)."""
    if r.geoloc is not None:
        lon, lat = r.geoloc
        dlon = float(np.nanmedian(np.abs(np.diff(lon, axis=-1)))) / 2
        dlat = float(np.nanmedian(np.abs(np.diff(lat, axis=0)))) / 2
        return (
            float(np.nanmin(lon)) - dlon,
            float(np.nanmin(lat)) - dlat,
            float(np.nanmax(lon)) + dlon,
            float(np.nanmax(lat)) + dlat,
        )
    from affine import Affine
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds

    assert r.transform is not None
    h, w = r.array.shape[-2:]
    west, south, east, north = array_bounds(h, w, Affine(*r.transform))
    crs = _crs(r.crs_wkt)
    if crs.is_geographic:  # type: ignore[attr-defined]
        return west, south, east, north
    return tuple(transform_bounds(crs, _crs(None), west, south, east, north, densify_pts=21))  # type: ignore[return-value]


def native_level_of(r: SourceRaster) -> int:
    """Native grid level of a source raster: the coarsest level that keeps its detail."""
    _w, s, _e, n = source_bounds(r)
    if r.geoloc is not None:
        lon, lat = r.geoloc
        dlon = float(np.nanmedian(np.abs(np.diff(lon, axis=-1))))
        dlat = float(np.nanmedian(np.abs(np.diff(lat, axis=0))))
        return native_level(min(dlon, dlat))
    assert r.transform is not None
    res = min(abs(r.transform[0]), abs(r.transform[4]))
    crs = _crs(r.crs_wkt)
    if crs.is_geographic:  # type: ignore[attr-defined]
        return native_level(res)
    metres = res * float(crs.linear_units_factor[1])  # type: ignore[attr-defined]
    return native_level_m(metres, lat=max(-89.0, min(89.0, (s + n) / 2)))


def _check_bounds(r: SourceRaster, bounds: tuple[float, float, float, float]) -> None:
    w, s, e, n = bounds
    if not all(math.isfinite(v) for v in bounds):
        raise InputError(f"{r.href}: bounds {bounds} are not finite; check its CRS")
    # half a source pixel of slack: cell-centred global grids reach past the poles
    slack = 0.0
    if r.transform is not None and _crs(r.crs_wkt).is_geographic:  # type: ignore[attr-defined]
        slack = max(abs(r.transform[0]), abs(r.transform[4])) / 2 + 1e-9
    elif r.geoloc is not None:
        slack = (n - s) / max(r.array.shape[-2], 1)
    if w < -180 - slack or e > 180 + slack or s < -90 - slack or n > 90 + slack:
        raise InputError(
            f"{r.href}: bbox ({w:g}, {s:g}, {e:g}, {n:g}) lies outside the grid "
            "(-180, -90, 180, 90); check the file's CRS and geotransform"
        )


def warp(r: SourceRaster, level: int, categorical: bool) -> WarpedRaster:
    """Warp ``r`` onto the grid at ``level`` (one GDAL reprojection)."""
    return warp_many([r], [level], categorical)[0]


def warp_many(
    rasters: Sequence[SourceRaster], levels: Sequence[int], categorical: bool
) -> list[WarpedRaster]:
    """Warp each raster onto the grid at its level, in order. Rasters on one source grid
    at one level (the bands of a GeoTIFF or of one scene: same CRS, transform, shape,
    dtype and nodata) share one multi-band GDAL reprojection, which costs about as much
    as one band."""
    out: dict[int, WarpedRaster] = {}
    groups: dict[tuple[int, tuple[object, ...]], list[int]] = {}
    for i, (r, level) in enumerate(zip(rasters, levels, strict=True)):
        _normalise_lon(r)
        groups.setdefault((level, _grid_signature(r, i)), []).append(i)
    for (level, _grid), members in groups.items():
        warped = _warp_group([rasters[i] for i in members], level, categorical)
        out.update(zip(members, warped, strict=True))
    return [out[i] for i in range(len(rasters))]


def _grid_signature(r: SourceRaster, i: int) -> tuple[object, ...]:
    """Rasters with equal signatures warp together (geolocated ones never do)."""
    if r.geoloc is not None or r.transform is None or r.array.ndim != 2:
        return ("alone", i)
    nodata = "nan" if isinstance(r.nodata, float) and math.isnan(r.nodata) else r.nodata
    return (r.crs_wkt, r.transform, r.array.shape, r.array.dtype.str, nodata)


def _warp_group(group: Sequence[SourceRaster], level: int, categorical: bool) -> list[WarpedRaster]:
    import rasterio
    from affine import Affine

    r = group[0]
    bounds = source_bounds(r)
    _check_bounds(r, bounds)
    w, s, e, n = bounds
    eps = 1e-9
    clipped = (
        max(w, -180.0),
        max(s, -90.0),
        min(max(e - eps, max(w, -180.0)), 180.0),
        min(max(n - eps, max(s, -90.0)), 90.0),
    )
    bx0, by0, bx1, by1 = bbox_to_block_range(level, clipped)
    b = BLOCK_SIZE
    rows, cols = (by1 - by0 + 1) * b, (bx1 - bx0 + 1) * b
    if rows * cols > MAX_WINDOW_PIXELS:
        raise InputError(
            f"{r.href}: band {r.band} covers {rows * cols:,} grid pixels at level {level} "
            f"(> {MAX_WINDOW_PIXELS:,}); announce it with a coarser level"
        )
    transform = Affine(*window_transform(level, bx0 * b, by0 * b, bx1 * b + b - 1, by1 * b + b - 1))
    if r.array.dtype.kind == "f":
        fill: float | int = float("nan")
    elif r.nodata is not None:
        fill = r.nodata
    else:
        info = np.iinfo(r.array.dtype)
        fill = int(info.max if info.min == 0 else info.min)
    aligned = [_grid_offset(g, level, transform, rows, cols, fill) for g in group]
    if all(a is not None for a in aligned):  # already on the grid: the warp is a copy
        return [
            WarpedRaster(g.band, level, bx0, by1, _place(g.array, a, rows, cols, fill), fill)
            for g, a in zip(group, aligned, strict=True)
            if a is not None
        ]
    dst = np.full((len(group), rows, cols), fill, dtype=r.array.dtype)
    nearest = not _downsamples(r, level, categorical)
    if _fast_nearest(group, dst, transform, nearest):
        return [WarpedRaster(g.band, level, bx0, by1, dst[k], fill) for k, g in enumerate(group)]
    kwargs: dict[str, object] = {}
    if r.geoloc is not None:
        kwargs["src_geoloc_array"] = np.stack(r.geoloc)
    else:
        assert r.transform is not None
        kwargs["src_transform"] = Affine(*r.transform)
    src_nodata = r.nodata if r.array.dtype.kind != "f" else float("nan")
    src = r.array if len(group) == 1 else np.stack([g.array for g in group])
    # rasterio's GDAL config is per thread; geolocation arrays travel as MEM datasets
    with rasterio.Env(GDAL_MEM_ENABLE_OPEN="YES"):
        _reproject(
            src, r, dst if len(group) > 1 else dst[0], src_nodata, transform, fill,
            nearest, kwargs,
        )  # fmt: skip
    return [WarpedRaster(g.band, level, bx0, by1, dst[k], fill) for k, g in enumerate(group)]


def _fast_nearest(
    group: Sequence[SourceRaster], dst: np.ndarray, transform: object, nearest: bool
) -> bool:
    """Nearest resampling of float rasters with an affine transform without GDAL
    (:mod:`gravitas.storage.pixels.fastwarp`); False when it does not apply."""
    r = group[0]
    if not nearest or r.geoloc is not None or r.transform is None or r.array.dtype.kind != "f":
        return False
    if _crs(r.crs_wkt).is_geographic:  # type: ignore[attr-defined]
        west, _s, east, _n = source_bounds(r)
        if west < -180.0 or east > 180.0:
            return False  # GDAL wraps such sources around the antimeridian
    from gravitas.storage.pixels.fastwarp import nearest_onto_grid

    src = r.array[None] if len(group) == 1 else np.stack([g.array for g in group])
    a, f = transform.a, transform.f  # type: ignore[attr-defined]
    c = transform.c  # type: ignore[attr-defined]
    return nearest_onto_grid(src, r.crs_wkt, r.transform, c, f, a, dst)


def _grid_offset(
    r: SourceRaster, level: int, transform: object, rows: int, cols: int, fill: float | int
) -> tuple[int, int] | None:
    """``(row, col)`` of the source's first pixel in the window when the source already
    lies on the grid (WGS 84, north-up, the level's pixel size, whole-pixel offset, inside
    the window), else None. Nearest resampling of such a source (the resampling
    :func:`warp` picks at equal resolution) copies every pixel, so GDAL is skipped."""
    if r.geoloc is not None or r.transform is None or r.array.ndim != 2:
        return None
    a, b, c, d, e, f = r.transform
    p = pixel_size(level)
    if (
        b != 0.0
        or d != 0.0
        or not (math.isclose(a, p, rel_tol=1e-9) and math.isclose(-e, p, rel_tol=1e-9))
    ):
        return None
    if r.array.dtype.kind != "f" and r.nodata is None and bool((r.array == fill).any()):
        return None  # GDAL may treat source values equal to the destination nodata specially
    west, north = transform.c, transform.f  # type: ignore[attr-defined]
    col, row = (c - west) / p, (north - f) / p
    h, w = r.array.shape
    # the offset error times the window size stays far below half a pixel
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    row0, col0 = round(row), round(col)
    if row0 < 0 or col0 < 0 or row0 + h > rows or col0 + w > cols:
        return None
    if _crs(r.crs_wkt) != _crs(None):
        return None
    return row0, col0


def _place(
    src: np.ndarray, at: tuple[int, int], rows: int, cols: int, fill: float | int
) -> np.ndarray:
    """``src`` at ``at`` in a ``rows x cols`` window of ``fill`` (``src`` itself, no copy,
    when it fills the window)."""
    row0, col0 = at
    if src.shape == (rows, cols) and src.flags.c_contiguous:
        return src
    dst = np.full((rows, cols), fill, dtype=src.dtype)
    dst[row0 : row0 + src.shape[0], col0 : col0 + src.shape[1]] = src
    return dst


def _downsamples(r: SourceRaster, level: int, categorical: bool) -> bool:
    """True when a continuous source is finer than the grid level (average it); a grid
    pixel inside one coarser source pixel takes that pixel's value (nearest)."""
    if categorical:
        return False
    if r.geoloc is not None or r.transform is None:
        return True
    res = min(abs(r.transform[0]), abs(r.transform[4]))
    crs = _crs(r.crs_wkt)
    if not crs.is_geographic:  # type: ignore[attr-defined]
        res = res * float(crs.linear_units_factor[1]) / M_PER_DEG  # type: ignore[attr-defined]
    return res < pixel_size(level) * (1 - 1e-6)


def _reproject(
    src: np.ndarray,
    r: SourceRaster,
    dst: np.ndarray,
    src_nodata: float | int | None,
    transform: object,
    fill: float | int,
    nearest: bool,
    kwargs: dict[str, object],
) -> None:
    from rasterio.warp import Resampling, reproject

    reproject(
        np.ascontiguousarray(src),
        dst,
        src_crs=_crs(r.crs_wkt),
        src_nodata=src_nodata,
        dst_transform=transform,
        dst_crs=_crs(None),
        dst_nodata=fill,
        resampling=Resampling.nearest if nearest else Resampling.average,
        num_threads=1,
        # each band keeps its own nodata pixels (GDAL may otherwise unify band masks)
        UNIFIED_SRC_NODATA="NO",
        **kwargs,
    )
