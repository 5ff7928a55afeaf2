"""Nearest-neighbour reprojection onto the grid without GDAL's per-pixel warper.

For a source with an affine transform (any CRS PROJ knows: UTM scenes, off-grid WGS 84
rasters), the source pixel coordinates of every destination pixel centre are computed
EXACTLY (pyproj) on a lattice of the destination window, every ``step`` pixels, and
interpolated bilinearly in between; the interpolation error is measured against exact
transforms at the lattice cell centres and the lattice is refined until it stays below
:data:`MAX_ERROR_PX` source pixels (GDAL's own warper interpolates the same way, with a
default error of 0.125 px). The gather (``floor`` of the coordinates, bounds check,
copy) runs in one parallel Numba pass over the window, for every band at once.

:func:`nearest_onto_grid` returns None whenever the lattice cannot meet the error bound
or a lattice point does not transform (then the caller uses GDAL).
"""

from __future__ import annotations

import functools

import numba
import numpy as np

__all__ = ["MAX_ERROR_PX", "nearest_onto_grid"]

MAX_ERROR_PX = 0.01
"""Largest interpolation error of a source coordinate, in source pixels."""
_STEPS = (32, 16, 8, 4)


@functools.lru_cache(maxsize=64)
def _transformer(src_wkt: str | None) -> object:
    """pyproj transformer WGS 84 lon/lat -> the source CRS (x east, y north)."""
    from pyproj import CRS, Transformer

    src = CRS.from_wkt(src_wkt) if src_wkt else CRS.from_epsg(4326)
    return Transformer.from_crs(CRS.from_epsg(4326), src, always_xy=True)


def _source_coords(
    src_wkt: str | None,
    src_transform: tuple[float, ...],
    lon: np.ndarray,
    lat: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Source (column, row) pixel coordinates, float64, of lon/lat points (exact)."""
    from affine import Affine

    x, y = _transformer(src_wkt).transform(lon, lat)  # type: ignore[attr-defined]
    inv = ~Affine(*src_transform)
    col = inv.a * x + inv.b * y + inv.c
    row = inv.d * x + inv.e * y + inv.f
    return np.asarray(col, np.float64), np.asarray(row, np.float64)


def _lattice(
    src_wkt: str | None,
    src_transform: tuple[float, ...],
    west: float,
    north: float,
    p: float,
    rows: int,
    cols: int,
    step: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Exact source coordinates at destination pixel centres ``(k*step, l*step)``, or
    None when the interpolation error exceeds the bound or a point does not transform."""
    nr = (rows - 1) // step + 2  # the last lattice row/column lies at or past the edge
    nc = (cols - 1) // step + 2
    i = np.arange(nr, dtype=np.float64) * step
    j = np.arange(nc, dtype=np.float64) * step
    lon = west + p * (j[None, :] + 0.5)
    lat = north - p * (i[:, None] + 0.5)
    lon, lat = np.broadcast_arrays(lon, lat)
    cx, cy = _source_coords(src_wkt, src_transform, lon.ravel(), lat.ravel())
    if not (np.isfinite(cx).all() and np.isfinite(cy).all()):
        return None
    cx, cy = cx.reshape(nr, nc), cy.reshape(nr, nc)
    # exact coordinates at the cell centres vs the bilinear interpolation there
    mlon = west + p * (j[:-1, None].T + step / 2 + 0.5)
    mlat = north - p * (i[:-1, None] + step / 2 + 0.5)
    mlon, mlat = np.broadcast_arrays(mlon, mlat)
    ex, ey = _source_coords(src_wkt, src_transform, mlon.ravel(), mlat.ravel())
    ix = 0.25 * (cx[:-1, :-1] + cx[1:, :-1] + cx[:-1, 1:] + cx[1:, 1:])
    iy = 0.25 * (cy[:-1, :-1] + cy[1:, :-1] + cy[:-1, 1:] + cy[1:, 1:])
    if not (np.isfinite(ex).all() and np.isfinite(ey).all()):
        return None
    err = max(
        float(np.abs(ix.ravel() - ex).max(initial=0.0)),
        float(np.abs(iy.ravel() - ey).max(initial=0.0)),
    )
    if err > MAX_ERROR_PX:
        return None
    return cx, cy


@numba.njit(parallel=True, cache=True)
def _gather(
    src: np.ndarray, cx: np.ndarray, cy: np.ndarray, step: int, dst: np.ndarray
) -> None:  # pragma: no cover - compiled
    nb, h, w = src.shape
    rows, cols = dst.shape[1], dst.shape[2]
    nl = cx.shape[1]
    kmax = cx.shape[0] - 2
    inv = 1.0 / step
    for i in numba.prange(rows):
        k = min(i // step, kmax)
        fi = (i - k * step) * inv
        rx = np.empty(nl)
        ry = np.empty(nl)
        for m in range(nl):
            rx[m] = cx[k, m] + fi * (cx[k + 1, m] - cx[k, m])
            ry[m] = cy[k, m] + fi * (cy[k + 1, m] - cy[k, m])
        for m in range(nl - 1):
            j0 = m * step
            if j0 >= cols:
                break
            x0, y0 = rx[m], ry[m]
            dx, dy = (rx[m + 1] - x0) * inv, (ry[m + 1] - y0) * inv
            for s in range(min(step, cols - j0)):
                x = x0 + s * dx
                y = y0 + s * dy
                if x >= 0.0 and y >= 0.0 and x < w and y < h:
                    sx = int(x)
                    sy = int(y)
                    for b in range(nb):
                        dst[b, i, j0 + s] = src[b, sy, sx]


def nearest_onto_grid(
    src: np.ndarray,
    src_wkt: str | None,
    src_transform: tuple[float, ...],
    west: float,
    north: float,
    p: float,
    dst: np.ndarray,
) -> bool:
    """Fill ``dst`` (bands, rows, cols; pre-filled with the nodata value) with the
    nearest source pixel of every destination pixel centre of the north-up WGS 84
    window at (``west``, ``north``) with pixel size ``p`` degrees. ``src`` is
    (bands, h, w). Returns False, leaving ``dst`` untouched, when the fast path cannot
    guarantee its error bound (the caller warps with GDAL instead)."""
    rows, cols = dst.shape[1], dst.shape[2]
    for step in _STEPS:
        lat = _lattice(src_wkt, src_transform, west, north, p, rows, cols, step)
        if lat is not None:
            _gather(np.ascontiguousarray(src), lat[0], lat[1], step, dst)
            return True
    return False
