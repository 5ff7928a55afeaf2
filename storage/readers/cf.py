"""CF coordinates of a gridded variable: which coordinate is x, which is y, and the
north-up affine transform of a regular grid whatever its row and column order.

A coordinate is a longitude when its ``units`` say degrees east (CF 4.1), its
``standard_name`` is ``longitude`` or ``grid_longitude``, its ``axis`` is ``X`` in
degrees, or (last resort) its name is one of the usual ones; latitudes likewise. A
projected grid's axes are ``projection_x_coordinate`` / ``projection_y_coordinate`` or
``axis`` X / Y. Grids stored south to north (latitude increasing with the row, a common
CF layout) and east to west are flipped to north-up, west-to-east arrays, so no reader
downstream has to care.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gravitas.schemas.errors import InputError

__all__ = ["GridAxes", "RegularGrid", "dataset_axes", "find_axes", "regular_grid"]

_EAST_UNITS = {"degrees_east", "degree_east", "degree_e", "degrees_e", "degreee", "degreese"}
_NORTH_UNITS = {"degrees_north", "degree_north", "degree_n", "degrees_n", "degreen", "degreesn"}
_LON_NAMES = ("longitude", "lon", "nav_lon", "long", "xlon")
_LAT_NAMES = ("latitude", "lat", "nav_lat", "ylat")
_DEGREES = {"degree", "degrees", "deg"}


@dataclass(frozen=True)
class GridAxes:
    """The horizontal coordinates of a variable."""

    x: Any
    """The x coordinate (an xarray DataArray, 1-D or 2-D)."""
    y: Any
    geographic: bool
    """True for longitude/latitude, False for projected x/y."""


def _units(coord: Any) -> str:
    return str(coord.attrs.get("units", "")).strip().lower().replace(" ", "_")


def _is_lon(name: str, coord: Any) -> bool:
    units, std = _units(coord), str(coord.attrs.get("standard_name", "")).lower()
    axis = str(coord.attrs.get("axis", "")).upper()
    if units in _EAST_UNITS or std in ("longitude", "grid_longitude"):
        return True
    if axis == "X" and units in _DEGREES:
        return True
    return name.lower() in _LON_NAMES and units in ("", *_DEGREES, *_EAST_UNITS)


def _is_lat(name: str, coord: Any) -> bool:
    units, std = _units(coord), str(coord.attrs.get("standard_name", "")).lower()
    axis = str(coord.attrs.get("axis", "")).upper()
    if units in _NORTH_UNITS or std in ("latitude", "grid_latitude"):
        return True
    if axis == "Y" and units in _DEGREES:
        return True
    return name.lower() in _LAT_NAMES and units in ("", *_DEGREES, *_NORTH_UNITS)


def _is_proj(coord: Any, axis: str) -> bool:
    std = str(coord.attrs.get("standard_name", "")).lower()
    return std == f"projection_{axis.lower()}_coordinate" or (
        str(coord.attrs.get("axis", "")).upper() == axis and _units(coord) not in _DEGREES
    )


def find_axes(var: Any) -> GridAxes | None:
    """The x/y coordinates of ``var`` over its last two dims, by CF attributes first."""
    ydim, xdim = var.dims[-2:]
    spatial = [
        (str(n), c)
        for n, c in var.coords.items()
        if c.ndim in (1, 2) and set(c.dims) <= {xdim, ydim} and c.dims
    ]
    lons = [(n, c) for n, c in spatial if _is_lon(n, c)]
    lats = [(n, c) for n, c in spatial if _is_lat(n, c)]
    for _, lon in lons:
        for _, lat in lats:
            if lon.ndim == 2 and lat.ndim == 2:
                return GridAxes(lon, lat, True)
            if lon.dims == (xdim,) and lat.dims == (ydim,):
                return GridAxes(lon, lat, True)
    xs = [c for _, c in spatial if c.dims == (xdim,) and _is_proj(c, "X")]
    ys = [c for _, c in spatial if c.dims == (ydim,) and _is_proj(c, "Y")]
    if xs and ys:
        return GridAxes(xs[0], ys[0], False)
    if xdim in var.coords and ydim in var.coords:
        return GridAxes(var.coords[xdim], var.coords[ydim], False)
    return None


def dataset_axes(ds: Any) -> GridAxes | None:
    """The longitude/latitude axes of the first data variable that has them."""
    for var in ds.data_vars.values():
        if var.ndim >= 2:
            axes = find_axes(var)
            if axes is not None and axes.geographic:
                return axes
    return None


@dataclass(frozen=True)
class RegularGrid:
    """A north-up affine transform plus how to reorder the array to match it."""

    transform: tuple[float, float, float, float, float, float]
    flip_rows: bool
    """True when the rows run south to north (the array must be flipped up-down)."""
    flip_cols: bool
    """True when the columns run east to west."""

    def orient(self, array: np.ndarray) -> np.ndarray:
        """``array`` (..., y, x) reordered to north-up, west-to-east."""
        if self.flip_rows:
            array = array[..., ::-1, :]
        if self.flip_cols:
            array = array[..., ::-1]
        return np.ascontiguousarray(array)


def regular_grid(where: str, x: np.ndarray, y: np.ndarray, *, geographic: bool) -> RegularGrid:
    """The transform of 1-D evenly spaced pixel-centre coordinates in either order.

    A geographic x axis that spans 360 degrees to within half a cell (float32
    longitudes often sum to 360.003) is snapped to exactly 360 / width, so it is treated
    as the global grid it is."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.ndim != 1 or y.ndim != 1 or len(x) < 2 or len(y) < 2:
        raise InputError(f"{where}: grid needs at least 2 x 2 cells, got {len(y)} x {len(x)}")
    dx = float(x[-1] - x[0]) / (len(x) - 1)
    dy = float(y[-1] - y[0]) / (len(y) - 1)
    if dx == 0 or dy == 0:
        raise InputError(f"{where}: coordinates repeat (zero spacing); cannot build a grid")
    if not (
        np.allclose(np.diff(x), dx, rtol=1e-3, atol=0)
        and np.allclose(np.diff(y), dy, rtol=1e-3, atol=0)
    ):
        raise InputError(f"{where}: coordinates are not evenly spaced; cannot build a transform")
    flip_cols, flip_rows = dx < 0, dy > 0
    dx, dy = abs(dx), abs(dy)
    west = float(min(x[0], x[-1])) - dx / 2
    north = float(max(y[0], y[-1])) + dy / 2
    if geographic and abs(dx * len(x) - 360.0) < dx / 2:
        dx = 360.0 / len(x)
    return RegularGrid((dx, 0.0, west, 0.0, -dy, north), flip_rows, flip_cols)
