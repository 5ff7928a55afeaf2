"""``aggregate_spatial``: zonal statistics of a raster cube over GeoJSON geometries.

Each geometry is rasterized onto the cube's grid (pixel centres inside, as rasterio's
``geometry_mask``), its pixels are flattened into one dimension and the reducer callback
runs over them; the answer has a ``geometry`` dimension (the geometries' order) in place
of ``y``/``x``. Geometries are GeoJSON in EPSG:4326: a Polygon/MultiPolygon, a Feature
or a FeatureCollection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from gravitas.agents.graphs.errors import ProcessArgumentInvalid

MAX_GEOMETRIES = 10_000


def geometries_of(value: Any, node: str = "aggregate_spatial") -> list[Any]:
    """Shapely geometries of a GeoJSON value (refused with a message when malformed)."""
    from shapely.geometry import shape

    if not isinstance(value, Mapping):
        raise ProcessArgumentInvalid("geometries must be a GeoJSON object",
                                     node=node, argument="geometries")  # fmt: skip
    kind = value.get("type")
    if kind == "FeatureCollection":
        feats = value.get("features")
        if not isinstance(feats, list) or not feats or len(feats) > MAX_GEOMETRIES:
            raise ProcessArgumentInvalid(
                f"a FeatureCollection needs 1..{MAX_GEOMETRIES} features",
                node=node,
                argument="geometries",
            )
        raw = [f.get("geometry") if isinstance(f, Mapping) else None for f in feats]
    elif kind == "Feature":
        raw = [value.get("geometry")]
    else:
        raw = [value]
    out = []
    for i, g in enumerate(raw):
        try:
            geom = shape(g)  # type: ignore[arg-type]
            if geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
                raise ValueError(geom.geom_type)
        except Exception:
            raise ProcessArgumentInvalid(
                f"geometry {i} is not a GeoJSON Polygon or MultiPolygon",
                node=node,
                argument="geometries",
            ) from None
        out.append(geom)
    return out


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
    geoms = geometries_of(geometries, node)
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
    out = xr.concat(parts, dim="geometry").assign_coords(geometry=np.arange(len(geoms)))
    return out.drop_vars("spatial_ref", errors="ignore")
