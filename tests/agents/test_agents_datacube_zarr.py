"""The direct Zarr v2 writer reads back exactly like ``Dataset.to_zarr``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from gravitas.agents.datacube.zarr_v2 import ZarrWriteError, write_zarr


def _dataset() -> xr.Dataset:
    rng = np.random.default_rng(5)
    patches, times, bands, p = 5, 7, 2, 8
    data = rng.random((patches, times, bands, p, p)).astype(np.float32)
    data[0, 0, 0, :2] = np.nan
    ds = xr.Dataset(
        {
            "data": (("patch", "time", "band", "y", "x"), data,
                     {"long_name": "values", "grid_mapping": "crs"}),
            "flags": (("patch", "time", "band", "y", "x"), (data > 0.5).astype(np.uint8),
                      {"flag_values": np.array([0, 1], np.uint8), "flag_meanings": "no yes"}),
            "label": (("patch", "y", "x"), rng.integers(1, 4, (patches, p, p)).astype(np.int32),
                      {"_FillValue": np.int32(0)}),
            "score": (("patch",), rng.random(patches).astype(np.float32), {"units": "1"}),
            "crs": ((), np.int32(0), {"semi_major_axis": 6378137.0, "epsg_code": "EPSG:4326"}),
        },
        coords={
            "time": ("time", (np.arange(times) * 5 * 86400 * 10**9).astype("datetime64[ns]"),
                     {"standard_name": "time"}),
            "band": ("band", np.array(["s2:b04", "s2:b8"])),
            "lat": (("patch", "y"), rng.random((patches, p))),
            "row": ("patch", np.arange(patches)),
        },
        attrs={"Conventions": "CF-1.8", "window": [1, 2, 3, 4], "stats": json.dumps({"a": 1})},
    )  # fmt: skip
    ds["data"].encoding["_FillValue"] = np.float32(np.nan)
    return ds


def test_reads_back_identical_to_to_zarr(tmp_path: Path) -> None:
    ds = _dataset()
    chunks = {"data": (2, 7, 2, 8, 8), "flags": (2, 7, 2, 8, 8), "label": (3, 8, 8)}  # ragged
    reference = ds.copy(deep=True)
    reference.to_zarr(
        tmp_path / "ref.zarr", mode="w", consolidated=True, zarr_format=2,
        encoding={k: {"chunks": v} for k, v in chunks.items()},
    )  # fmt: skip
    n = write_zarr(ds, tmp_path / "ours.zarr", chunks)
    ours, ref = xr.open_zarr(tmp_path / "ours.zarr"), xr.open_zarr(tmp_path / "ref.zarr")
    assert ours.identical(ref)
    assert ours["data"].encoding["chunks"] == (2, 7, 2, 8, 8)
    assert np.isnan(ours["data"].values[0, 0, 0, :2]).all()
    assert str(ours["time"].dtype).startswith("datetime64")
    assert list(ours["band"].values) == ["s2:b04", "s2:b8"]
    files = [f for f in (tmp_path / "ours.zarr").rglob("*") if f.is_file()]
    assert n == len(files)
    assert (tmp_path / "ours.zarr" / "data" / "2.0.0.0.0").is_file()  # the ragged edge chunk
    meta = json.loads((tmp_path / "ours.zarr" / ".zmetadata").read_text())
    assert meta["metadata"]["data/.zarray"]["fill_value"] == "NaN"
    # a second write replaces the first
    write_zarr(ds.isel(patch=slice(0, 2)), tmp_path / "ours.zarr", {"data": (1, 7, 2, 8, 8)})
    assert xr.open_zarr(tmp_path / "ours.zarr").sizes["patch"] == 2


def test_rejects_object_variables_and_bad_chunks(tmp_path: Path) -> None:
    ds = xr.Dataset({"names": (("i",), np.array(["a", None], dtype=object))})
    with pytest.raises(ZarrWriteError, match="names"):
        write_zarr(ds, tmp_path / "x.zarr")
    with pytest.raises(ZarrWriteError, match=r"chunks \(1,\) of 'data'"):
        write_zarr(_dataset(), tmp_path / "y.zarr", {"data": (1,)})
