"""``save_result`` as Zarr: the lazy cube streamed chunk by chunk into a Zarr store.

The cube is never computed whole: ``xarray.Dataset.to_zarr(compute=False)`` builds the
write tasks and one ``dask.compute`` runs them together with the all-nodata check, so
each stored block is read once and the result may be larger than memory. Chunks are made
regular (``256 x 256`` in ``y``/``x``, one step of every other dimension) as Zarr needs.
The store is a directory ``result.zarr`` in a fresh temporary directory that the caller
owns (:meth:`GraphResult.close` removes it); it carries the CF coordinates and the CRS
(rioxarray's ``spatial_ref``), consolidated metadata, Zarr format 2 (read by every
xarray/zarr since 2019).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import dask
import numpy as np
import xarray as xr

from gravitas.agents.graphs.errors import NoDataForUpdate, ProcessArgumentInvalid
from gravitas.agents.graphs.result import GraphResult

ZARR_MEDIA_TYPE = "application/vnd+zarr"
CHUNK = 256


def _prepared(arr: xr.DataArray) -> xr.Dataset:
    arr = arr.copy()
    arr.name = str(arr.name or "data")
    for name in list(arr.coords):
        if arr[name].dtype == object:
            arr[name] = arr[name].astype(str)
    for key, val in list(arr.attrs.items()):
        if not isinstance(val, str | int | float | np.number):
            arr.attrs[key] = json.dumps(val, default=str) if isinstance(val, list) else str(val)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    chunks = {d: (CHUNK if d in ("x", "y") else 1) for d in arr.dims}
    arr = arr.chunk(chunks)
    ds = arr.to_dataset()
    for name in ds.variables:
        ds[name].encoding.pop("chunks", None)
        ds[name].encoding.pop("preferred_chunks", None)
    return ds


def write_zarr(value: Any, node: str) -> GraphResult:
    """Stream ``value`` (a raster cube with ``x``/``y``) into a new Zarr directory."""
    if not isinstance(value, xr.DataArray) or not {"x", "y"} <= set(value.dims):
        raise ProcessArgumentInvalid(
            "ZARR needs a raster cube with x and y dimensions; save aggregates as JSON",
            node=node,
            argument="format",
        )
    ds = _prepared(value)
    (name,) = ds.data_vars
    tmp = Path(tempfile.mkdtemp(prefix="gravitas-zarr-"))
    root = tmp / "result.zarr"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # all-NaN chunks, zarr v2 format notes
            write = ds.to_zarr(root, mode="w-", compute=False, consolidated=True,
                               zarr_format=2)  # fmt: skip
            valid = ds[name].notnull().any() if ds[name].dtype.kind == "f" else True
            _, any_valid = dask.compute(write, valid)
        if not bool(any_valid):
            raise NoDataForUpdate(
                "every value of the result is nodata: the selection holds no valid pixels",
                node=node,
                argument="data",
            )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return GraphResult(b"", ZARR_MEDIA_TYPE, "result.zarr", "ZARR", path=root)
