"""The pixel store as a lazy dask-backed xarray, on real Stage IV rain (Hurricane Florence),
on RocksDB and on the real SeaweedFS S3 server: same values as the warped source arrays,
one chunk per block and time step, nothing read until computed, only existing blocks read."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest

from gravitas.kernels.grid import bbox_to_pixel_range
from gravitas.schemas.grid import BLOCK_SIZE
from gravitas.storage.blocks import BlockStore
from gravitas.storage.keys import key_timestamp, scan_ranges
from gravitas.storage.pixels import LayerRegistry
from gravitas.storage.pixels.errors import PixelSearchError
from gravitas.storage.pixels.index import ScenePlan, prepare_scene, write_scene
from gravitas.storage.pixels.lazy import open_layer, open_layers
from gravitas.storage.pixels.merge import merge_staged
from gravitas.storage.pixels.overviews import update_pyramid
from gravitas.storage.pixels.read import read_layer
from gravitas.storage.sampledata import fetch

ALL_TIME = (0, 2_000_000_000)
FLORENCE = (-80.7, 32.3, -74.8, 37.7)


class CountingStore:
    """A real block store that counts the values it is asked for."""

    def __init__(self, inner: BlockStore) -> None:
        self.inner = inner
        self.values_read = 0

    def get_many_windows(self, keys: Iterable[bytes]) -> list[Any]:
        keys = list(keys)
        self.values_read += len(keys)
        return self.inner.get_many_windows(keys)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def store(block_store: BlockStore) -> BlockStore:
    """An empty block store on each backend (``tests.fixtures.s3.block_store``)."""
    return block_store


@pytest.fixture(scope="module")
def plan() -> ScenePlan:
    return prepare_scene(
        "stageiv-florence", "stageiv", [Path(fetch("stageiv_nc"))], layer="stageiv"
    )


@pytest.fixture
def indexed(store: BlockStore, tmp_path: Path, plan: ScenePlan) -> tuple[BlockStore, LayerRegistry]:
    registry = LayerRegistry(tmp_path / "layers.sqlite")
    for fam in write_scene(store, registry, plan):
        merge_staged(store, fam.layer, plan.scene_id, fam.level, fam.timestamp, fam.mortons)
        update_pyramid(store, registry.get(fam.layer), fam.timestamp, fam.mortons)
    return store, registry


def test_native_values_equal_the_warped_source_and_chunks_are_blocks(
    indexed: tuple[BlockStore, LayerRegistry], plan: ScenePlan
) -> None:
    store, registry = indexed
    arr = open_layer(store, registry, "stageiv", FLORENCE, *ALL_TIME)
    level = arr.attrs["level"]
    x0, y0, x1, y1 = bbox_to_pixel_range(level, FLORENCE)
    assert arr.sizes == {"time": 23, "lat": y1 - y0 + 1, "lon": x1 - x0 + 1}
    assert arr.data.numblocks == (23, (y1 >> 8) - (y0 >> 8) + 1, (x1 >> 8) - (x0 >> 8) + 1)
    assert arr.rio.crs.to_epsg() == 4326 and arr["lat"].attrs["units"] == "degrees_north"
    values = arr.values
    for t, wl in enumerate(sorted(plan.layers, key=lambda w: w.timestamp)):
        w = wl.warped
        # the warped source array covers blocks bx0.. / by1.. (row 0 = north)
        full = np.full_like(values[t], np.nan)
        gx0, gy1 = w.bx0 * BLOCK_SIZE, w.by1 * BLOCK_SIZE + BLOCK_SIZE - 1
        src = np.where(w.valid(w.array), w.array, np.nan).astype(np.float32)
        r0, c0 = gy1 - y1, x0 - gx0
        piece = src[max(r0, 0) :, max(c0, 0) :][: full.shape[0], : full.shape[1]]
        full[: piece.shape[0], : piece.shape[1]] = piece
        assert np.array_equal(values[t], full, equal_nan=True), t


def test_nothing_is_read_until_computed_and_only_what_is_asked(
    indexed: tuple[BlockStore, LayerRegistry],
) -> None:
    store, registry = indexed
    counting = CountingStore(store)
    wide = (-80.7, 32.3, -55.0, 37.7)  # reaches far into the Atlantic, outside Stage IV
    arr = open_layer(counting, registry, "stageiv", wide, *ALL_TIME)  # type: ignore[arg-type]
    assert counting.values_read == 0
    level = arr.attrs["level"]
    x0, y0, x1, y1 = bbox_to_pixel_range(level, wide)
    box = (x0 >> 8, y0 >> 8, x1 >> 8, y1 >> 8)
    stored = 0  # the keys listed in the box on the days of the layer's steps
    for ts in registry.times("stageiv", *ALL_TIME):
        for lo, hi in scan_ranges("stageiv", level, ts, ts, box):
            stored += sum(1 for key in store.scan_keys(lo, hi) if key_timestamp(key) == ts)
    assert 0 < stored < arr.data.npartitions  # some chunks of the box hold no stored block
    with dask.config.set(scheduler="sync"):
        one = arr.isel(time=5, lat=slice(0, 10), lon=slice(0, 10)).values
    assert counting.values_read == 1 and one.shape == (10, 10)
    with dask.config.set(scheduler="sync"):
        arr.mean().compute()
    assert counting.values_read == 1 + stored  # fill chunks read nothing


def test_coarser_levels_read_the_overview_arrays(indexed: tuple[BlockStore, LayerRegistry]) -> None:
    store, registry = indexed
    lazy = open_layer(store, registry, "stageiv", FLORENCE, *ALL_TIME, level=12)
    eager = read_layer(store, registry, "stageiv", FLORENCE, *ALL_TIME, level=12)
    assert lazy.attrs["level"] == 12
    assert np.array_equal(lazy.values, eager.values, equal_nan=True)
    empty = open_layer(store, registry, "stageiv", FLORENCE, 0, 1000)
    assert empty.sizes["time"] == 0 and empty.sizes["lat"] > lazy.sizes["lat"]
    with pytest.raises(PixelSearchError, match="ask for level <= 15"):
        open_layer(store, registry, "stageiv", FLORENCE, *ALL_TIME, level=17)


def test_bands_dimension_for_several_layers(indexed: tuple[BlockStore, LayerRegistry]) -> None:
    store, registry = indexed
    with pytest.raises(PixelSearchError, match="repeat"):
        open_layers(store, registry, ["stageiv", "stageiv"], FLORENCE, *ALL_TIME)
    cube = open_layers(store, registry, ["stageiv"], FLORENCE, *ALL_TIME, level=13)
    assert cube.dims == ("bands", "time", "lat", "lon") and list(cube["bands"].values) == [
        "stageiv"
    ]
