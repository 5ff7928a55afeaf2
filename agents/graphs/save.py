"""``save_result`` and ``/file_formats``: GTiff (a COG), netCDF, JSON and ZARR
(streamed by :mod:`gravitas.agents.graphs.zarr_out`, never computed whole).

Rasters with dims ``(y, x)`` plus any others are written as GeoTIFF bands (the extra
dims flattened, each band described by its labels) or as a CF netCDF; anything without
spatial dims (aggregates, vector cubes, scalars) is JSON: ``{"dims", "coords",
"data"}`` with nodata as ``null``.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from gravitas.agents.graphs.errors import FormatUnsupported, ProcessArgumentInvalid
from gravitas.agents.graphs.result import GraphResult

_FORMATS = {
    "gtiff": ("GTiff", "image/tiff; application=geotiff; profile=cloud-optimized", "tif"),
    "netcdf": ("netCDF", "application/x-netcdf", "nc"),
    "json": ("JSON", "application/json", "json"),
    "zarr": ("ZARR", "application/vnd+zarr", "zarr"),
}
_ALIASES = {"geotiff": "gtiff", "cog": "gtiff", "tif": "gtiff", "tiff": "gtiff", "nc": "netcdf"}
_MAX_FORMAT_NAME = 40


def output_format(name: str) -> str:
    """The canonical openEO name of an output format (case-insensitive)."""
    if len(name) > _MAX_FORMAT_NAME or not name.isascii() or not name.isprintable():
        raise FormatUnsupported(
            f"output format {name[:40]!r} is not supported; use one of "
            f"{[v[0] for v in _FORMATS.values()]}"
        )
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key not in _FORMATS:
        raise FormatUnsupported(
            f"output format {name[:40]!r} is not supported; use one of "
            f"{[v[0] for v in _FORMATS.values()]}"
        )
    return _FORMATS[key][0]


def file_formats() -> dict[str, Any]:
    """The openEO ``GET /file_formats`` body."""
    raster = ["raster"]
    return {
        "input": {},
        "output": {
            "GTiff": {
                "title": "GeoTIFF (cloud-optimized)",
                "description": "Spatial results; other dimensions become bands.",
                "gis_data_types": raster,
                "parameters": {},
            },
            "netCDF": {
                "title": "Network Common Data Form (CF)",
                "gis_data_types": raster,
                "parameters": {},
            },
            "ZARR": {
                "title": "Zarr (v2, consolidated)",
                "description": "Spatial results streamed chunk by chunk (256 x 256, one "
                "step of every other dimension); /result and job downloads send the "
                "store as one ZIP (zarr ZipStore layout).",
                "gis_data_types": raster,
                "parameters": {},
            },
            "JSON": {
                "title": "JavaScript Object Notation",
                "description": "Aggregates and scalars: {dims, coords, data}.",
                "gis_data_types": ["other", "vector"],
                "parameters": {},
            },
        },
    }


def _jsonable(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.datetime64):
        return str(np.datetime_as_string(v, unit="s")) + "Z"
    if isinstance(v, np.generic):
        return _jsonable(v.item())
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def _to_json(value: Any) -> bytes:
    if isinstance(value, xr.DataArray):
        coords = {}
        for name in value.dims:
            if name in value.coords:
                vals = value[name].values
                if vals.dtype.kind == "M":
                    coords[name] = [_jsonable(t) for t in vals]
                else:
                    coords[name] = _jsonable(vals.tolist())
        body: Any = {
            "dims": list(value.dims),
            "coords": coords,
            "data": _jsonable(np.asarray(value.values).tolist()),
        }
    else:
        body = _jsonable(np.asarray(value).tolist() if isinstance(value, np.ndarray) else value)
    return json.dumps(body, allow_nan=False).encode()


def _spatial(arr: xr.DataArray) -> bool:
    return {"x", "y"} <= set(arr.dims)


def _gtiff(arr: xr.DataArray, path: Path) -> None:
    other = [d for d in arr.dims if d not in ("y", "x")]
    if other:
        stacked = arr.stack(band=other).transpose("band", "y", "x")
        labels = [
            "/".join(str(_jsonable(v)) for v in (k if isinstance(k, tuple) else (k,)))
            for k in stacked["band"].values
        ]
        data = xr.DataArray(
            stacked.values, dims=("band", "y", "x"),
            coords={"band": np.arange(1, len(labels) + 1), "y": arr.y, "x": arr.x},
        )  # fmt: skip
    else:
        labels = [str(arr.name or "data")]
        data = arr.transpose("y", "x").copy()
    data = data.astype(np.float32) if data.dtype.kind in "fc" or data.dtype == bool else data
    data = data.rio.set_spatial_dims(x_dim="x", y_dim="y").rio.write_crs(arr.rio.crs or "EPSG:4326")
    data = data.rio.write_nodata(np.nan if data.dtype.kind == "f" else None, encoded=False)
    data.rio.to_raster(path, driver="COG", compress="DEFLATE", tags={"bands": json.dumps(labels)})


def _netcdf(arr: xr.DataArray, path: Path) -> None:
    arr = arr.copy()
    arr.name = str(arr.name or "data")
    for name in list(arr.coords):
        if arr[name].dtype == object:
            arr[name] = arr[name].astype(str)
    for key, val in list(arr.attrs.items()):
        if not isinstance(val, str | int | float | np.number):
            arr.attrs[key] = json.dumps(_jsonable(val)) if isinstance(val, list) else str(val)
    ds = arr.to_dataset()
    ds.to_netcdf(path, engine="scipy" if _no_h5() else None)


def _no_h5() -> bool:
    try:
        import netCDF4  # noqa: F401
    except ImportError:
        try:
            import h5netcdf  # noqa: F401
        except ImportError:
            return True
    return False


def save(value: Any, fmt: str, node: str, workdir: Path | None = None) -> GraphResult:
    """Compute ``value`` and encode it as ``fmt`` (already-computed values are fine)."""
    name = output_format(fmt)
    media, ext = next((m, e) for n, m, e in _FORMATS.values() if n == name)
    if isinstance(value, xr.DataArray) and name != "ZARR":
        value = value.compute()
    if name == "ZARR":
        from gravitas.agents.graphs.zarr_out import write_zarr

        return write_zarr(value, node)
    if name == "JSON":
        return GraphResult(_to_json(value), media, f"result.{ext}", name)
    if not isinstance(value, xr.DataArray) or not _spatial(value):
        raise ProcessArgumentInvalid(
            f"{name} needs a raster cube with x and y dimensions; save aggregates as JSON",
            node=node,
            argument="format",
        )
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / f"result.{ext}"
        (_gtiff if name == "GTiff" else _netcdf)(value, path)
        data = path.read_bytes()
    return GraphResult(data, media, f"result.{ext}", name)
