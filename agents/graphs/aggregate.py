"""``aggregate_spatial``: zonal statistics of a raster cube over GeoJSON geometries.

Each geometry is rasterized onto the cube's grid (pixel centres inside, as rasterio's
``geometry_mask``), its pixels are flattened into one dimension and the reducer callback
runs over them; the answer has a ``geometry`` dimension (the geometries' order) in place
of ``y``/``x``. Geometries are checked :class:`~gravitas.agents.graphs.zones.Zones`
(GeoJSON in EPSG:4326 or a vector layer of the node, labelled by feature id).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from gravitas.agents.graphs.errors import ProcessArgumentInvalid
from gravitas.agents.graphs.zones import zones_of


def geometries_of(value: Any, node: str = "aggregate_spatial") -> list[Any]:
    """Checked shapely geometries of a GeoJSON value (or of resolved :class:`Zones`)."""
    return zones_of(value, None, None, node).geoms


def geometry_mask(cube: xr.DataArray, geom: Any) -> np.ndarray:
    """``(y, x)`` boolean mask of the cube's pixels whose centres lie inside ``geom``."""
    from rasterio.features import geometry_mask as gm

    transform = cube.rio.transform(recalc=True)
    shape = (cube.sizes["y"], cube.sizes["x"])
    return ~gm([geom], out_shape=shape, transform=transform, all_touched=False)


def aggregate(
    data: xr.DataArray,
    geometries: Any,
    reducer: Callable[..., Any],
    target_dimension: str = "result",
    context: Any = None,
    node: str = "aggregate_spatial",
) -> xr.DataArray:
    """Zonal statistics: dims ``(geometry, *others)``."""
    if not isinstance(data, xr.DataArray) or not {"x", "y"} <= set(data.dims):
        raise ProcessArgumentInvalid("data must be a raster cube with x and y dimensions",
                                     node=node, argument="data")  # fmt: skip
    zones = zones_of(geometries, None, None, node)
    geoms = zones.geoms
    parts = []
    for geom in geoms:
        mask = geometry_mask(data, geom)
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        if rows.size == 0:
            part = data.isel(y=slice(0, 1), x=slice(0, 1)).where(False)
            sub_mask: np.ndarray = np.zeros((1, 1), bool)
        else:
            ys, xs = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
            part = data.isel(y=ys, x=xs)
            sub_mask = mask[ys, xs]
        flat = part.stack(px=("y", "x")).isel(px=np.flatnonzero(sub_mask.ravel()))
        if flat.sizes["px"] == 0:
            flat = part.stack(px=("y", "x")).isel(px=[0]).where(False)
        flat = flat.drop_vars(["px", "y", "x", "spatial_ref"], errors="ignore")
        flat = flat.chunk({"px": -1}) if flat.chunks else flat
        parts.append(
            flat.reduce(
                reducer,
                dim="px",
                keep_attrs=True,
                positional_parameters={"data": 0},
                named_parameters={},
                context=context,
            )
        )
    out = xr.concat(parts, dim="geometry").assign_coords(geometry=zones.labels)
    return out.drop_vars("spatial_ref", errors="ignore")
