"""The process-graph engine on real data, on both block-store backends: NDVI + temporal
median of the Landsat 7 series against rasterio on the original GeoTIFFs (with their
Fmask), GTiff and netCDF round-trips, a per-pixel 90th percentile of Stage IV rain,
zonal statistics over a polygon, and whole-block statistics served from the overview
pyramid equal to the pixel computation."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.warp import Resampling, reproject

from gravitas.agents import graphs
from gravitas.agents.services import NodeServices
from gravitas.kernels.grid import bbox_to_block_range, block_bounds
from gravitas.storage.pixels.sources import FMASK_CLEAR
from tests.agents.graphs_data import (
    LANDSAT_BOX,
    graph,
    ingest,
    ingest_landsat,
    landsat_dates,
    node,
    reducer,
    ref,
    services_for,
    stageiv_plan,
    warped_stack,
)


@pytest.fixture(scope="module", params=["rocksdb", pytest.param("s3", marks=pytest.mark.s3)])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[NodeServices, Any]]:
    s3 = request.getfixturevalue("s3_server") if request.param == "s3" else None
    services = services_for(tmp_path_factory.mktemp(request.param), request.param, s3)
    ingest_landsat(services)
    plan = stageiv_plan()
    ingest(services, plan)
    yield services, plan
    services.close()


def _landsat_box() -> dict[str, float]:
    w, s, e, n = LANDSAT_BOX
    return {"west": w, "south": s, "east": e, "north": n}


def _ndvi_median_graph(fmt: str) -> dict[str, Any]:
    return graph(
        load=node("load_collection", id="landsat", spatial_extent=_landsat_box(),
                  temporal_extent=["2008-01-01", "2009-01-01"], bands=["b3", "b4"]),
        ndvi=node("ndvi", data=ref("load")),
        median=node("reduce_dimension", data=ref("ndvi"), dimension="t",
                    reducer=reducer("median")),
        save=node("save_result", data=ref("median"), format=fmt),
    )  # fmt: skip


def _independent_ndvi_median(transform: Any, shape: tuple[int, int]) -> np.ndarray:
    """rasterio on the original files: each date's b3/b4/Fmask warped (nearest) onto the
    result's grid, cloudy pixels dropped, NDVI, median over the dates."""
    stack = []
    for d in landsat_dates():
        bands = {}
        for name in ("b3", "b4", "fmask"):
            path = next(d.glob(f"*_{name}.tif"))
            with rasterio.open(path) as src:
                dst = np.full(shape, np.nan, np.float64)
                reproject(
                    src.read(1).astype(np.float64), dst, src_transform=src.transform,
                    src_crs=src.crs, src_nodata=src.nodata if name != "fmask" else None,
                    dst_transform=transform, dst_crs="EPSG:4326", dst_nodata=np.nan,
                    resampling=Resampling.nearest,
                )  # fmt: skip
                bands[name] = dst
        clear = np.isin(bands["fmask"], FMASK_CLEAR)
        red = np.where(clear, bands["b3"], np.nan)
        nir = np.where(clear, bands["b4"], np.nan)
        stack.append((nir - red) / (nir + red))
    with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(np.stack(stack), axis=0)


def test_ndvi_median_gtiff_and_netcdf_equal_rasterio_on_the_files(
    backend: tuple[NodeServices, Any],
) -> None:
    services, _ = backend
    tif = graphs.execute(_ndvi_median_graph("GTiff"), services)
    assert tif.format == "GTiff" and tif.media_type.startswith("image/tiff")
    assert tif.filename.endswith(".tif") and tif.details["scheduler"] == "threads"
    with rasterio.MemoryFile(tif.data) as mem, mem.open() as src:
        assert src.crs.to_epsg() == 4326 and src.count == 1
        got = src.read(1).astype(np.float64)
        transform, shape = src.transform, (src.height, src.width)
    want = _independent_ndvi_median(transform, shape)
    both = np.isfinite(got) & np.isfinite(want)
    assert both.sum() > 0.5 * got.size > 1000
    # nearest-neighbour warps of a different window may pick the other source pixel where
    # a grid pixel centre sits on a source pixel edge: allow 1 in 500 such pixels
    assert (np.isfinite(got) == np.isfinite(want)).mean() > 0.998
    close = np.isclose(got[both], want[both], rtol=1e-5, atol=1e-6)
    assert close.mean() > 0.998, close.mean()

    nc = graphs.execute(_ndvi_median_graph("netCDF"), services)
    assert nc.format == "netCDF" and nc.filename.endswith(".nc")
    ds = xr.open_dataset(io.BytesIO(nc.data))
    (var,) = ds.data_vars
    arr = ds[var].transpose("y", "x").values
    assert arr.shape == shape
    np.testing.assert_allclose(arr, got, rtol=1e-6, equal_nan=True)
    lons = ds["x"].values
    assert lons[0] == pytest.approx(transform.c + transform.a / 2)


def test_stageiv_per_pixel_quantile_equals_numpy(backend: tuple[NodeServices, Any]) -> None:
    services, plan = backend
    box = {"west": -79.0, "south": 33.5, "east": -77.0, "north": 35.0}
    g = graph(
        load=node("load_collection", id="stageiv", spatial_extent=box, temporal_extent=None),
        q90=node("reduce_dimension", data=ref("load"), dimension="t",
                 reducer=reducer("quantiles", probabilities=[0.9])),
        save=node("save_result", data=ref("q90"), format="netCDF"),
    )  # fmt: skip
    res = graphs.execute(g, services)
    ds = xr.open_dataset(io.BytesIO(res.data))
    (var,) = ds.data_vars
    got = ds[var].squeeze().transpose("y", "x").values
    info = services.layers.get("stageiv")
    stack = warped_stack(plan, "stageiv", info.native_level, ds["x"].values, ds["y"].values)
    assert stack.shape[0] == 23 and stack.shape[1:] == got.shape
    want = np.nanquantile(stack, 0.9, axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4, equal_nan=True)
    assert np.nanmax(got) > 10  # the hurricane's rain is there


PENTAGON = {
    "type": "Polygon",
    "coordinates": [[[-79.0, 33.6], [-77.2, 33.5], [-76.9, 34.6], [-78.1, 35.2],
                     [-79.1, 34.7], [-79.0, 33.6]]],
}  # fmt: skip


def test_aggregate_spatial_over_a_polygon_equals_numpy(backend: tuple[NodeServices, Any]) -> None:
    services, plan = backend
    from shapely import contains_xy
    from shapely.geometry import shape

    box = {"west": -80.0, "south": 33.0, "east": -76.0, "north": 36.0}
    g = graph(
        load=node("load_collection", id="stageiv", spatial_extent=box, temporal_extent=None),
        zonal=node("aggregate_spatial", data=ref("load"), geometries=PENTAGON,
                   reducer=reducer("mean")),
        save=node("save_result", data=ref("zonal"), format="JSON"),
    )  # fmt: skip
    res = graphs.execute(g, services)
    body = json.loads(res.data)
    assert body["dims"] == ["geometry", "t", "bands"] and len(body["coords"]["t"]) == 23
    got = np.array(body["data"], dtype=np.float64)[0, :, 0]
    # independent: pixel centres of the loaded window inside the polygon (shapely)
    from gravitas.kernels.grid import pixel_size

    level = services.layers.get("stageiv").native_level
    p = pixel_size(level)
    x0 = int(np.floor((box["west"] + 180) / p))
    x1 = int(np.floor((box["east"] + 180) / p))
    y0 = int(np.floor((box["south"] + 90) / p))
    y1 = int(np.floor((box["north"] + 90) / p))
    lons = -180 + (np.arange(x0, x1 + 1) + 0.5) * p
    lats = (-90 + (np.arange(y0, y1 + 1) + 0.5) * p)[::-1]
    stack = warped_stack(plan, "stageiv", level, lons, lats)
    inside = contains_xy(shape(PENTAGON), *np.meshgrid(lons, lats))
    assert inside.sum() > 100
    want = np.array([np.nanmean(step[inside]) for step in stack])
    np.testing.assert_allclose(got, want, rtol=1e-5)


REDUCERS = {
    "mean": np.nanmean, "min": np.nanmin, "max": np.nanmax, "sum": np.nansum,
    "count": lambda v: np.isfinite(v).sum(), "sd": lambda v: np.nanstd(v, ddof=1),
    "variance": lambda v: np.nanvar(v, ddof=1),
}  # fmt: skip


def test_whole_block_statistics_from_the_pyramid_equal_the_pixels(
    backend: tuple[NodeServices, Any],
) -> None:
    services, plan = backend
    level = services.layers.get("stageiv").native_level
    bx0, by0, _, _ = bbox_to_block_range(level, (-79.0, 33.5, -77.0, 35.0))
    w, s, _, _ = block_bounds(level, bx0, by0)
    _, _, e, n = block_bounds(level, bx0 + 1, by0 + 1)  # 2 x 2 whole blocks
    eps = 1e-7
    rect = {"type": "Polygon", "coordinates": [[[w + eps, s + eps], [e - eps, s + eps],
            [e - eps, n - eps], [w + eps, n - eps], [w + eps, s + eps]]]}  # fmt: skip
    box = dict(west=w - 0.05, south=s - 0.05, east=e + 0.05, north=n + 0.05)

    def zonal(red: str) -> dict[str, Any]:
        return graph(
            load=node("load_collection", id="stageiv", spatial_extent=box, temporal_extent=None),
            zonal=node("aggregate_spatial", data=ref("load"), geometries=rect,
                       reducer=reducer(red)),
            save=node("save_result", data=ref("zonal"), format="JSON"),
        )  # fmt: skip

    # independent: float64 numpy on the warped original pixels of the 512 x 512 window
    from gravitas.kernels.grid import pixel_size

    p = pixel_size(level)
    lons = -180 + (np.arange(bx0 * 256, (bx0 + 2) * 256) + 0.5) * p
    lats = (-90 + (np.arange(by0 * 256, (by0 + 2) * 256) + 0.5) * p)[::-1]
    stack = warped_stack(plan, "stageiv", level, lons, lats).reshape(23, -1)
    raw = NodeServices(services.settings.model_copy(update={"graph_overviews": False}))
    raw.__dict__["block_store"] = services.block_store
    for red, fn in REDUCERS.items():
        fast = graphs.execute(zonal(red), services)
        assert fast.details["served_from_overviews"] == 1, red
        a = np.array(json.loads(fast.data)["data"], dtype=np.float64)
        assert a.shape == (1, 23, 1)
        want = np.array([fn(step) for step in stack])
        np.testing.assert_allclose(a[0, :, 0], want, rtol=1e-9, atol=1e-9, err_msg=red)
        if red in ("mean", "sd"):  # and the engine's own pixel computation agrees
            slow = graphs.execute(zonal(red), raw)
            assert slow.details["served_from_overviews"] == 0
            b = np.array(json.loads(slow.data)["data"], dtype=np.float64)
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-5, err_msg=red)
