"""openEO ZARR results on a real node (embedded agents, uvicorn edge on 127.0.0.1, the
real Sentinel-2 B04/B08 sample as collection ``s2``): ``POST /result`` answers the Zarr
store as one ZIP (zarr's ZipStore layout) equal to rasterio's NDVI on the original
JPEG2000 files; a batch job publishes the store under ``graphs/openeo-jobs/...``
(chunks served by the STAC asset route, a STAC item with a ``application/vnd+zarr``
asset) and its download is the same ZIP; a hostile format is refused, nothing stored."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import rasterio
import xarray as xr
import zarr

from tests.fixtures.openeo_node import TOKEN, ingest_s2, node_thread
from tests.streams.test_streams_openeo_client import BBOX, reference_ndvi

API = "/openeo/1.2"


def _graph(fmt: str) -> dict[str, object]:
    return {
        "load": {"process_id": "load_collection", "arguments": {
            "id": "s2", "spatial_extent": BBOX, "temporal_extent": ["2017-02-01", "2017-03-01"],
            "bands": ["B04", "B08"]}},
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}}},
        "save": {"process_id": "save_result", "arguments": {
            "data": {"from_node": "ndvi"}, "format": fmt}, "result": True},
    }  # fmt: skip


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict[str, str]]]:
    data = tmp_path_factory.mktemp("openeo-zarr")
    ingest_s2(data)
    with node_thread(data) as url:
        resp = httpx.get(f"{url}{API}/credentials/basic", auth=("alice", TOKEN))
        auth = {"Authorization": f"Bearer basic//{resp.json()['access_token']}"}
        yield url, data, auth


def _open_zip(blob: bytes, tmp: Path) -> xr.DataArray:
    path = tmp / "r.zarr.zip"
    path.write_bytes(blob)
    with zarr.storage.ZipStore(path, mode="r") as store:
        ds = xr.open_zarr(store, consolidated=True).load()
    (var,) = ds.data_vars
    return ds[var]


def test_result_zarr_equals_rasterio_and_a_batch_job_publishes_it(
    node: tuple[str, Path, dict[str, str]], tmp_path: Path
) -> None:
    url, data, auth = node
    with httpx.Client(base_url=url + API, timeout=120, headers=auth) as http:
        formats = http.get("/file_formats").json()["output"]
        assert formats["ZARR"]["gis_data_types"] == ["raster"]
        resp = http.post("/result", json={"process": {"process_graph": _graph("ZARR")}})
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "application/zip"
        assert 'filename="result.zarr.zip"' in resp.headers["content-disposition"]
        arr = _open_zip(resp.content, tmp_path)
        assert arr.dims == ("t", "y", "x") and arr.sizes["t"] == 1
        x, y = arr["x"].values, arr["y"].values
        p = float(x[1] - x[0])
        transform = rasterio.Affine(p, 0, x[0] - p / 2, 0, -p, y[0] + p / 2)
        got = arr.isel(t=0).values.astype(np.float32)
        ref = reference_ndvi(transform, got.shape)
        both = np.isfinite(got) & np.isfinite(ref)
        assert both.sum() > 0.9 * np.isfinite(ref).sum() > 10_000
        assert float(np.median(np.abs(got[both] - ref[both]))) < 0.005
        assert float(np.corrcoef(got[both], ref[both])[0, 1]) > 0.999

        # the same graph as a batch job
        created = http.post("/jobs", json={"process": {"process_graph": _graph("ZARR")}})
        assert created.status_code == 201, created.text
        job = created.headers["OpenEO-Identifier"]
        assert http.post(f"/jobs/{job}/results").status_code == 202
        deadline = time.monotonic() + 90
        while (status := http.get(f"/jobs/{job}").json()["status"]) != "finished":
            assert status in ("queued", "running", "created"), http.get(f"/jobs/{job}/logs").text
            assert time.monotonic() < deadline
            time.sleep(0.3)
        results = http.get(f"/jobs/{job}/results").json()
        (name, asset) = next(iter(results["assets"].items()))
        assert name == "result.zarr.zip" and asset["type"] == "application/zip"
        blob = httpx.get(asset["href"], timeout=60).content
        again = _open_zip(blob, tmp_path)
        np.testing.assert_array_equal(again.values, arr.values)

    items = httpx.get(f"{url}/stac/collections/openeo-jobs/items", headers=auth).json()
    (item,) = [i for i in items["features"] if i["properties"]["openeo:job_id"] == job]
    zasset = item["assets"]["result.zarr"]
    assert zasset["type"] == "application/vnd+zarr"
    assert "/stac/assets/graphs/openeo-jobs/" in zasset["href"], zasset["href"]
    stored = data / "objects" / "graphs" / "openeo-jobs" / job
    assert len([p for p in stored.rglob("*") if p.is_file()]) > 3
    meta = httpx.get(zasset["href"] + "/.zmetadata", headers=auth)
    assert meta.status_code == 200 and "zarr_consolidated_format" in meta.text


def _objects(data: Path) -> list[tuple[str, bytes]]:
    root = data / "objects"
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
    return [(p.relative_to(root).as_posix(), p.read_bytes()) for p in files]


def test_hostile_format_refused_and_nothing_stored(
    node: tuple[str, Path, dict[str, str]],
) -> None:
    url, data, auth = node
    before = _objects(data)
    for fmt in ("ZARR/../../../etc", "zarr\x00", "ZARR" * 40):
        resp = httpx.post(f"{url}{API}/result", headers=auth, timeout=60,
                          json={"process": {"process_graph": _graph(fmt)}})  # fmt: skip
        assert resp.status_code == 400, resp.text
        body = resp.json()
        assert body["code"] == "FormatUnsupported" and repr(fmt[:40]) in body["message"]
    assert _objects(data) == before
