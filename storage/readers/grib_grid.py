"""The projection and affine grid of a projected GRIB field (Lambert conformal, polar
stereographic), from the GRIB keys cfgrib keeps in the variable's attributes.

cfgrib gives such a field 2-D latitude/longitude arrays over pixel-index dims ``(y, x)``.
The grid itself is regular in its projection: this module rebuilds that projection
(``DxInMetres``, ``LaDInDegrees``, ``LoVInDegrees``, ``Latin1/2InDegrees``, on one of
the GRIB earth spheres: cfgrib does not keep ``shapeOfTheEarth``, so each is tried) and a
north-up transform, and checks it against cfgrib's own latitudes/longitudes (to a
hundredth of a cell) before anyone relies on it; a grid that does not check out is left
to the 2-D coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ProjectedGrid", "dataset_projection", "open_grib", "projected_grid"]

GRIB_SPHERES_M = (6_367_470.0, 6_371_229.0, 6_371_200.0, 6_378_160.0)
"""Earth radii of GRIB's ``shapeOfTheEarth`` 0, 6, 8 and 2 (sphere approximations)."""


@dataclass(frozen=True)
class ProjectedGrid:
    """A projected grid: CRS, north-up affine transform, shape, and the row order."""

    crs_wkt: str
    transform: tuple[float, float, float, float, float, float]
    shape: tuple[int, int]
    """(rows, cols)."""
    flip_rows: bool
    """True when the field's rows run south to north (flip to north-up)."""
    x_dim: str
    y_dim: str

    def orient(self, array: np.ndarray) -> np.ndarray:
        """``array`` (..., y, x) in north-up row order."""
        return np.ascontiguousarray(array[..., ::-1, :]) if self.flip_rows else array

    def cube_dimensions(self) -> dict[str, dict[str, Any]]:
        """STAC datacube ``cube:dimensions`` entries of x and y: extents in the projection's
        metres (pixel centres) and its PROJJSON as reference system."""
        from pyproj import CRS

        a, _, c, _, e, f = self.transform
        rows, cols = self.shape
        projjson = CRS.from_wkt(self.crs_wkt).to_json_dict()
        x = [c + a / 2, c + a * (cols - 0.5)]
        y = [f + e * (rows - 0.5), f + e / 2]
        return {
            self.x_dim: {"type": "spatial", "axis": "x", "extent": x, "step": a,
                         "reference_system": projjson},
            self.y_dim: {"type": "spatial", "axis": "y", "extent": y, "step": -e,
                         "reference_system": projjson},
        }  # fmt: skip

    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in the projection."""
        a, _, c, _, e, f = self.transform
        rows, cols = self.shape
        return c, f + e * rows, c + a * cols, f


def _crs(attrs: dict[str, Any], radius: float) -> Any:
    from pyproj import CRS

    kind = attrs.get("GRIB_gridType")
    lov = float(attrs.get("GRIB_LoVInDegrees", 0.0))
    lon_0 = lov - 360.0 if lov > 180.0 else lov
    if kind == "lambert":
        return CRS.from_dict({
            "proj": "lcc", "lat_1": float(attrs["GRIB_Latin1InDegrees"]),
            "lat_2": float(attrs["GRIB_Latin2InDegrees"]),
            "lat_0": float(attrs["GRIB_LaDInDegrees"]), "lon_0": lon_0,
            "R": radius, "units": "m",
        })  # fmt: skip
    if kind == "polar_stereographic":
        south = int(attrs.get("GRIB_projectionCentreFlag", 0)) & 128
        return CRS.from_dict({
            "proj": "stere", "lat_0": -90.0 if south else 90.0,
            "lat_ts": float(attrs.get("GRIB_LaDInDegrees", 60.0)), "lon_0": lon_0,
            "R": radius, "units": "m",
        })  # fmt: skip
    return None


def projected_grid(var: Any) -> ProjectedGrid | None:
    """The projected grid of a cfgrib variable, or None (not projected, or the keys do
    not reproduce cfgrib's own coordinates)."""
    attrs = dict(var.attrs)
    if attrs.get("GRIB_gridType") not in ("lambert", "polar_stereographic"):
        return None
    if "latitude" not in var.coords or "longitude" not in var.coords:
        return None
    lat = np.asarray(var.coords["latitude"].values, np.float64)
    lon = np.asarray(var.coords["longitude"].values, np.float64)
    if lat.ndim != 2 or lat.shape != var.shape[-2:]:
        return None
    try:
        dx = float(attrs["GRIB_DxInMetres"])
        dy = float(attrs["GRIB_DyInMetres"])
    except (KeyError, ValueError, TypeError):
        return None
    if dx <= 0 or dy <= 0:
        return None
    for radius in GRIB_SPHERES_M:
        found = _fit(attrs, radius, lat, lon, dx, dy)
        if found is not None:
            crs, transform, flip = found
            ydim, xdim = (str(d) for d in var.dims[-2:])
            shape = (int(lat.shape[0]), int(lat.shape[1]))
            return ProjectedGrid(crs.to_wkt(), transform, shape, flip, xdim, ydim)
    return None  # the keys do not describe cfgrib's coordinates: keep the 2-D ones


def _fit(
    attrs: dict[str, Any], radius: float, lat: np.ndarray, lon: np.ndarray, dx: float, dy: float
) -> tuple[Any, tuple[float, float, float, float, float, float], bool] | None:
    """CRS, north-up transform and row flip if the grid on this sphere reproduces the
    coordinates to a hundredth of a cell."""
    from pyproj import Transformer
    from pyproj.exceptions import CRSError

    try:
        crs = _crs(attrs, radius)
    except (KeyError, ValueError, TypeError, CRSError):
        return None
    if crs is None:
        return None
    to_xy = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    xs, ys = to_xy.transform(np.where(lon > 180, lon - 360, lon), lat)
    rows, cols = lat.shape
    x0, y0 = float(xs[0, 0]), float(ys[0, 0])
    step_y = dy if ys[-1, 0] > ys[0, 0] else -dy
    step_x = dx if xs[0, -1] > xs[0, 0] else -dx
    expect_x = x0 + step_x * np.arange(cols)[None, :]
    expect_y = y0 + step_y * np.arange(rows)[:, None]
    if max(np.abs(xs - expect_x).max() / dx, np.abs(ys - expect_y).max() / dy) > 0.01:
        return None
    if step_x < 0:
        return None
    flip = step_y > 0
    top = y0 + step_y * (rows - 1) if flip else y0
    return crs, (dx, 0.0, x0 - dx / 2, 0.0, -dy, top + dy / 2), flip


def dataset_projection(ds: Any) -> ProjectedGrid | None:
    """The projected grid of the first data variable that has one."""
    for var in ds.data_vars.values():
        if var.ndim >= 2:
            grid = projected_grid(var)
            if grid is not None:
                return grid
    return None


def open_grib(path: Any) -> Any:
    """One xarray Dataset of every GRIB hypercube of a file (cfgrib's ``open_dataset``
    refuses a file with several level types; ``open_datasets`` splits it). A variable
    that repeats on another level type is renamed ``<name>_<typeOfLevel>``, as the
    ingest readers name its layer."""
    import cfgrib
    import xarray as xr

    parts = list(cfgrib.open_datasets(str(path), backend_kwargs={"indexpath": ""}))
    if len(parts) == 1:
        return parts[0]
    seen: set[str] = set()
    renamed = []
    for ds in parts:
        names = {
            str(n): f"{n}_{v.attrs['GRIB_typeOfLevel']}"
            for n, v in ds.data_vars.items()
            if str(n) in seen and v.attrs.get("GRIB_typeOfLevel")
        }
        ds = ds.rename(names) if names else ds
        seen |= {str(n) for n in ds.data_vars}
        renamed.append(ds)
    return xr.merge(renamed, compat="override", join="outer", combine_attrs="drop_conflicts")
