"""Issue 12's later outputs of the process-graph engine, on real data:

- ``save_result`` ZARR streamed from the lazy cube (per-date NDVI of the Landsat 7
  series against rasterio on the original GeoTIFFs and their Fmask), published under
  ``graphs/`` by a Featurize request;
- ``reduce_spatial`` and ``reduce_dimension`` over ``x`` then ``y`` answered from the
  overview pyramids plus the edge strips, equal to numpy on the warped original pixels;
- ``aggregate_spatial`` over a vector layer of the node (``gravitas vector add``);
- hostile geometries, layer names and formats refused naming the value, nothing stored
  changed.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.warp import Resampling, reproject

from gravitas.agents import graphs
from gravitas.agents.graphs import errors as E
from gravitas.agents.graphs.features import graph_features
from gravitas.agents.services import NodeServices
from gravitas.kernels.grid import bbox_to_block_range, block_bounds, pixel_size
from gravitas.schemas.events import Featurize
from gravitas.storage.pixels.sources import FMASK_CLEAR
from gravitas.storage.vector.store import VectorStore
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
from tests.fixtures.state import fingerprint

LBOX = dict(zip(("west", "south", "east", "north"), LANDSAT_BOX, strict=True))


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeServices, Any]]:
    s = services_for(tmp_path_factory.mktemp("outputs"), "rocksdb")
    ingest_landsat(s, 3)
    plan = stageiv_plan()
    ingest(s, plan)
    yield s, plan
    s.close()


def _ndvi_per_date(transform: Any, shape: tuple[int, int]) -> np.ndarray:
    """rasterio on the original files: each date's b3/b4/Fmask warped (nearest) onto the
    result's grid, cloudy pixels dropped, NDVI: ``(t, y, x)``."""
    out = []
    for d in landsat_dates(3):
        bands = {}
        for name in ("b3", "b4", "fmask"):
            with rasterio.open(next(d.glob(f"*_{name}.tif"))) as src:
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
        with np.errstate(all="ignore"):
            out.append((nir - red) / (nir + red))
    return np.stack(out)


def _ndvi_zarr_graph() -> dict[str, Any]:
    return graph(
        load=node("load_collection", id="landsat", spatial_extent=LBOX, temporal_extent=None,
                  bands=["b3", "b4"]),
        ndvi=node("ndvi", data=ref("load")),
        save=node("save_result", data=ref("ndvi"), format="ZARR"),
    )  # fmt: skip


def test_zarr_streamed_equals_rasterio_on_the_files(
    services: tuple[NodeServices, Any], tmp_path: Path
) -> None:
    svc, _ = services
    res = graphs.execute(_ndvi_zarr_graph(), svc)
    try:
        assert res.format == "ZARR" and res.is_tree and res.data == b""
        assert res.media_type == "application/vnd+zarr" and res.filename == "result.zarr"
        assert (
            res.packed_filename == "result.zarr.zip" and res.packed_media_type == "application/zip"
        )
        ds = xr.open_zarr(res.path, consolidated=True)
        (var,) = ds.data_vars
        arr = ds[var]
        assert arr.dims == ("t", "y", "x") and arr.sizes["t"] == 3
        assert arr.encoding["chunks"][1:] == (min(256, arr.sizes["y"]), min(256, arr.sizes["x"]))
        got = arr.values.astype(np.float64)
        x, y = ds["x"].values, ds["y"].values
        p = float(x[1] - x[0])
        transform = rasterio.Affine(p, 0, x[0] - p / 2, 0, -p, y[0] + p / 2)
        want = _ndvi_per_date(transform, got.shape[1:])
        both = np.isfinite(got) & np.isfinite(want)
        assert both.sum() > 0.5 * np.isfinite(want).sum() > 1000
        assert (np.isfinite(got) == np.isfinite(want)).mean() > 0.998
        close = np.isclose(got[both], want[both], rtol=1e-5, atol=1e-6)
        assert close.mean() > 0.998, close.mean()
        # the ZIP travels the same store (zarr's ZipStore layout)
        packed = tmp_path / "r.zarr.zip"
        packed.write_bytes(res.read())
        import zarr

        with zarr.storage.ZipStore(packed, mode="r") as store:
            again = xr.open_zarr(store, consolidated=True)[var].values
        np.testing.assert_array_equal(again, arr.values)
    finally:
        res.close()
    assert not res.path.exists()


def test_zarr_featurize_published_under_graphs(services: tuple[NodeServices, Any]) -> None:
    svc, _ = services
    now = datetime(2020, 1, 1, tzinfo=UTC)
    ev = Featurize(request_id="rq-zarr-1", expression="", layers={}, bbox=LANDSAT_BOX,
                   time={"start": now, "end": now}, process_graph=_ndvi_zarr_graph())  # fmt: skip
    first = graph_features(ev, svc, "n1")
    assert first.result_format == "ZARR"
    assert first.result_ref == "graphs/features/rq-zarr-1/result.zarr"
    keys = sorted(svc.object_store.list(first.result_ref + "/"))
    assert f"{first.result_ref}/.zmetadata" in keys and len(keys) > 5
    from gravitas.storage.objects.public import is_published

    assert all(is_published(k) for k in keys)
    before = fingerprint(svc)
    again = graph_features(ev, svc, "n1")  # a replay writes the same bytes under the same keys
    assert again.result_sha256 == first.result_sha256 and fingerprint(svc) == before
    root = svc.object_store.href(first.result_ref)
    ds = xr.open_zarr(root.removeprefix("file://"), consolidated=True)
    assert ds[next(iter(ds.data_vars))].sizes["t"] == 3


REDUCERS = {
    "mean": np.nanmean, "min": np.nanmin, "max": np.nanmax, "sum": np.nansum,
    "count": lambda v: np.isfinite(v).sum(), "sd": lambda v: np.nanstd(v, ddof=1),
    "variance": lambda v: np.nanvar(v, ddof=1),
}  # fmt: skip


def _stage_box(svc: NodeServices) -> tuple[dict[str, float], int, tuple[int, int, int, int]]:
    """A box of 2 x 2 whole blocks plus partial blocks on every side; its pixel range."""
    level = svc.layers.get("stageiv").native_level
    bx0, by0, _, _ = bbox_to_block_range(level, (-79.0, 33.5, -77.0, 35.0))
    w, s, _, _ = block_bounds(level, bx0, by0)
    _, _, e, n = block_bounds(level, bx0 + 1, by0 + 1)
    p = pixel_size(level)
    box = dict(west=w - 40.3 * p, south=s - 17.6 * p, east=e + 23.2 * p, north=n + 9.5 * p)
    x0 = int(np.floor((box["west"] + 180) / p))
    x1 = int(np.floor((box["east"] + 180) / p))
    y0 = int(np.floor((box["south"] + 90) / p))
    y1 = int(np.floor((box["north"] + 90) / p))
    return box, level, (x0, y0, x1, y1)


def _pixels(svc: NodeServices, plan: Any) -> tuple[dict[str, float], np.ndarray]:
    box, level, (x0, y0, x1, y1) = _stage_box(svc)
    p = pixel_size(level)
    lons = -180 + (np.arange(x0, x1 + 1) + 0.5) * p
    lats = (-90 + (np.arange(y0, y1 + 1) + 0.5) * p)[::-1]
    return box, padded_stack(plan, level, lons, lats)


def padded_stack(plan: Any, level: int, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """:func:`warped_stack` where pixels outside the warped rasters are nodata (NaN)."""
    p = pixel_size(level)
    xs = np.rint((lons + 180.0) / p - 0.5).astype(np.int64)
    ys = np.rint((lats + 90.0) / p - 0.5).astype(np.int64)
    out = []
    for w in sorted((w for w in plan.layers if w.layer == "stageiv"), key=lambda w: w.timestamp):
        r = w.warped
        cols, rows = xs - r.bx0 * 256, (r.by1 * 256 + 255) - ys
        arr = r.array.astype(np.float64)
        if r.nodata is not None and not np.isnan(r.nodata):
            arr[arr == r.nodata] = np.nan
        step = np.full((rows.size, cols.size), np.nan)
        rin = (rows >= 0) & (rows < arr.shape[0])
        cin = (cols >= 0) & (cols < arr.shape[1])
        step[np.ix_(rin, cin)] = arr[np.ix_(rows[rin], cols[cin])]
        out.append(step)
    return np.stack(out)


def test_reduce_spatial_from_the_pyramid_equals_numpy(services: tuple[NodeServices, Any]) -> None:
    svc, plan = services
    box, stack = _pixels(svc, plan)
    flat = stack.reshape(stack.shape[0], -1)
    raw = NodeServices(svc.settings.model_copy(update={"graph_overviews": False}))
    raw.__dict__["block_store"] = svc.block_store
    for red, fn in REDUCERS.items():
        g = graph(
            load=node("load_collection", id="stageiv", spatial_extent=box, temporal_extent=None),
            r=node("reduce_spatial", data=ref("load"), reducer=reducer(red)),
            save=node("save_result", data=ref("r"), format="JSON"),
        )  # fmt: skip
        fast = graphs.execute(g, svc)
        assert fast.details["served_from_overviews"] == 1, red
        body = json.loads(fast.data)
        assert body["dims"] == ["t", "bands"]
        got = np.array(body["data"], dtype=np.float64)[:, 0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.array([fn(step) for step in flat])
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=red)
        if red == "mean":  # the engine's own pixel path agrees
            slow = graphs.execute(g, raw)
            assert slow.details["served_from_overviews"] == 0
            b = np.array(json.loads(slow.data)["data"], dtype=np.float64)[:, 0]
            np.testing.assert_allclose(got, b, rtol=2e-5, atol=1e-5, err_msg=red)


def test_reduce_dimension_x_then_y_from_the_pyramid(services: tuple[NodeServices, Any]) -> None:
    svc, plan = services
    box, stack = _pixels(svc, plan)
    flat = stack.reshape(stack.shape[0], -1)
    for red, first, second in (("max", "x", "y"), ("sum", "y", "x"), ("min", "x", "y")):
        g = graph(
            load=node("load_collection", id="stageiv", spatial_extent=box, temporal_extent=None),
            a=node("reduce_dimension", data=ref("load"), dimension=first, reducer=reducer(red)),
            b=node("reduce_dimension", data=ref("a"), dimension=second, reducer=reducer(red)),
            save=node("save_result", data=ref("b"), format="JSON"),
        )  # fmt: skip
        res = graphs.execute(g, svc)
        assert res.details["served_from_overviews"] == 1, red
        got = np.array(json.loads(res.data)["data"], dtype=np.float64).reshape(-1)
        want = np.array([REDUCERS[red](step) for step in flat])
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=red)
    # a mean of row means is not the cube's mean: computed from the pixels, as numpy does it
    g = graph(
        load=node("load_collection", id="stageiv", spatial_extent=box, temporal_extent=None),
        a=node("reduce_dimension", data=ref("load"), dimension="x", reducer=reducer("mean")),
        b=node("reduce_dimension", data=ref("a"), dimension="y", reducer=reducer("mean")),
        save=node("save_result", data=ref("b"), format="JSON"),
    )  # fmt: skip
    res = graphs.execute(g, svc)
    assert res.details["served_from_overviews"] == 0
    got = np.array(json.loads(res.data)["data"], dtype=np.float64).reshape(-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanmean(np.nanmean(stack, axis=2), axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-5)


FIELDS = [
    ("north-field", [[-78.6, 34.2], [-77.6, 34.1], [-77.5, 34.9], [-78.5, 34.8], [-78.6, 34.2]]),
    ("south-field", [[-78.9, 33.6], [-78.0, 33.6], [-78.0, 34.0], [-78.9, 33.6]]),
    ("far-away", [[10.0, 10.0], [11.0, 10.0], [11.0, 11.0], [10.0, 10.0]]),
]


@pytest.fixture(scope="module")
def fields(services: tuple[NodeServices, Any], tmp_path_factory: pytest.TempPathFactory) -> str:
    svc, _ = services
    path = tmp_path_factory.mktemp("vec") / "fields.geojson"
    feats = [
        {"type": "Feature", "properties": {"name": n}, "geometry": _poly(ring)}
        for n, ring in FIELDS
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    with VectorStore.for_data_dir(svc.data_dir) as vs:
        vs.add_layer("fields", path, id_field="name")
    return "fields"


def _zonal_graph(geometries: Any, red: str = "mean", fmt: str = "JSON") -> dict[str, Any]:
    box = {"west": -80.0, "south": 33.0, "east": -76.0, "north": 36.0}
    return graph(
        load=node("load_collection", id="stageiv", spatial_extent=box, temporal_extent=None),
        zonal=node("aggregate_spatial", data=ref("load"), geometries=geometries,
                   reducer=reducer(red)),
        save=node("save_result", data=ref("zonal"), format=fmt),
    )  # fmt: skip


def test_aggregate_spatial_over_a_vector_layer_equals_numpy(
    services: tuple[NodeServices, Any], fields: str
) -> None:
    from shapely import contains_xy
    from shapely.geometry import Polygon

    svc, plan = services
    res = graphs.execute(_zonal_graph(fields), svc)
    body = json.loads(res.data)
    assert body["dims"] == ["geometry", "t", "bands"]
    assert body["coords"]["geometry"] == ["north-field", "south-field"]  # far-away is outside
    got = np.array(body["data"], dtype=np.float64)[:, :, 0]
    level = svc.layers.get("stageiv").native_level
    p = pixel_size(level)
    x0, x1 = int(np.floor(100.0 / p)), int(np.floor(104.0 / p))
    y0, y1 = int(np.floor(123.0 / p)), int(np.floor(126.0 / p))
    lons = -180 + (np.arange(x0, x1 + 1) + 0.5) * p
    lats = (-90 + (np.arange(y0, y1 + 1) + 0.5) * p)[::-1]
    stack = warped_stack(plan, "stageiv", level, lons, lats)
    for gi, (_, ring) in enumerate(FIELDS[:2]):
        inside = contains_xy(Polygon(ring), *np.meshgrid(lons, lats))
        assert inside.sum() > 20
        want = np.array([np.nanmean(step[inside]) for step in stack])
        np.testing.assert_allclose(got[gi], want, rtol=1e-5)
    # the same polygons inline give the same numbers
    inline = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [r]}}
        for _, r in FIELDS[:2]]}  # fmt: skip
    same = np.array(json.loads(graphs.execute(_zonal_graph(inline), svc).data)["data"])
    np.testing.assert_allclose(same[:, :, 0], got, rtol=1e-12)


def _poly(ring: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [ring]}


BOWTIE = _poly([[-78.0, 34.0], [-77.0, 35.0], [-77.0, 34.0], [-78.0, 35.0], [-78.0, 34.0]])
HOSTILE: list[tuple[Any, str, type[E.GraphError], list[str]]] = [
    ("ghost", "zonal", E.CollectionNotFound, ["'ghost'", "fields"]),
    ("../../etc/passwd", "zonal", E.ProcessArgumentInvalid, ["'../../etc/passwd'", "layer name"]),
    ("x'; DROP TABLE layers;--", "zonal", E.ProcessArgumentInvalid, ["DROP TABLE"]),
    ("a" * 300, "zonal", E.ProcessArgumentInvalid, ["not a vector layer name"]),
    ("", "zonal", E.ProcessArgumentInvalid, ["''"]),
    (BOWTIE, "zonal", E.ProcessArgumentInvalid, ["geometry 0", "not a valid polygon"]),
    (_poly([[-78.0, 34.0], [float("nan"), 35.0], [-77.0, 34.0], [-78.0, 34.0]]), "zonal",
     E.ProcessArgumentInvalid, ["NaN"]),
    (_poly([[-78.0, 34.0], [500.0, 35.0], [-77.0, 34.0], [-78.0, 34.0]]), "zonal",
     E.ProcessArgumentInvalid, ["outside lon", "EPSG:4326"]),
    ({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, "zonal",
     E.ProcessArgumentInvalid, ["LineString"]),
    ({"type": "FeatureCollection", "features": []}, "zonal", E.ProcessArgumentInvalid,
     ["1..10000"]),
    ({"type": "Polygon", "coordinates": "rm -rf /"}, "zonal", E.ProcessArgumentInvalid,
     ["geometry 0"]),
    (42, "zonal", E.ProcessArgumentInvalid, ["GeoJSON or the name of a vector layer"]),
]  # fmt: skip


def test_hostile_geometries_and_layer_names_refused(
    services: tuple[NodeServices, Any], fields: str
) -> None:
    svc, _ = services
    vec = svc.data_dir / "vector" / "index.sqlite"
    before, vec_before = fingerprint(svc), vec.read_bytes()
    for geometries, where, cls, words in HOSTILE:
        with pytest.raises(E.GraphError) as info:
            graphs.execute(_zonal_graph(geometries), svc)
        exc = info.value
        assert isinstance(exc, cls), f"{geometries!r:.60}: {type(exc).__name__}: {exc}"
        text = str(exc)
        assert "\n" not in text and "Traceback" not in text and f"'{where}'" in text
        assert "'geometries'" in text and str(svc.data_dir) not in text
        for w in words:
            assert w in text, text
    assert fingerprint(svc) == before and vec.read_bytes() == vec_before


def test_a_node_without_vector_layers_creates_no_store(
    services: tuple[NodeServices, Any], tmp_path: Path
) -> None:
    shared, _ = services
    svc = NodeServices(shared.settings.model_copy(update={"data_dir": tmp_path}))
    svc.__dict__["block_store"], svc.__dict__["layers"] = shared.block_store, shared.layers
    with pytest.raises(E.CollectionNotFound, match="known vector layers: none"):
        graphs.execute(_zonal_graph("fields"), svc)
    assert not (tmp_path / "vector").exists()


def test_hostile_formats_refused(services: tuple[NodeServices, Any]) -> None:
    svc, _ = services
    before = fingerprint(svc)
    for fmt in ("zarr3", "ZARR\x00", "Zarr/../../x", "z" * 500, "Z\u0410RR"):
        g = graph(
            load=node("load_collection", id="landsat", spatial_extent=LBOX, temporal_extent=None),
            save=node("save_result", data=ref("load"), format=fmt),
        )  # fmt: skip
        with pytest.raises(E.FormatUnsupported) as info:
            graphs.execute(g, svc)
        text = str(info.value)
        assert repr(fmt[:40]) in text and "ZARR" in text and "\n" not in text
    assert fingerprint(svc) == before


def test_zarr_of_an_aggregate_or_all_nodata_refused_leaving_no_files(
    services: tuple[NodeServices, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    svc, _ = services
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # this test's own temp dir
    tmp = tmp_path
    left = set(tmp.glob("gravitas-zarr-*"))
    assert not left
    with pytest.raises(E.ProcessArgumentInvalid, match="ZARR needs a raster cube"):
        graphs.execute(_zonal_graph(_poly([[-78.0, 34.0], [-77.0, 34.0], [-77.0, 35.0],
                                           [-78.0, 34.0]]), fmt="ZARR"), svc)  # fmt: skip
    empty = {"west": -150.0, "south": 10.0, "east": -149.9, "north": 10.1}
    g = graph(
        load=node("load_collection", id="landsat", spatial_extent=empty, temporal_extent=None),
        save=node("save_result", data=ref("load"), format="ZARR"),
    )  # fmt: skip
    with pytest.raises(E.GraphError, match="nodata"):
        graphs.execute(g, svc)
    assert set(tmp.glob("gravitas-zarr-*")) == left
