"""Spatial statistics served from the overview pyramids by block arithmetic, on real
Stage IV rain (Hurricane Florence, 23 hourly steps) against numpy on the warped
original pixels:

- ``reduce_spatial`` over a bbox that crosses block boundaries with partial blocks on
  every side: no key is listed, the pixels of exactly the partial edge blocks are read,
  the whole blocks come from the pyramid (merged up the quadtree where four whole
  siblings allow it);
- ``aggregate_spatial`` over polygons: the blocks wholly inside each polygon from the
  pyramid, the pixels only of the blocks its edge cuts; a polygon inside one block is
  all pixels; both equal numpy on the pixel centres inside (shapely) and the engine's
  own pixel path.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pytest

from gravitas.agents import graphs
from gravitas.agents.services import NodeServices
from gravitas.kernels.grid import pixel_size
from gravitas.kernels.morton import morton_decode
from gravitas.storage.keys import decode_key, layer_id
from tests.agents.graphs_data import graph, ingest, node, reducer, ref, services_for, stageiv_plan
from tests.agents.test_agents_graphs_outputs import REDUCERS, padded_stack


class CountingStore:
    """The node's real block store, recording what is asked of it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.pixel_keys: list[bytes] = []
        self.stats_keys: list[bytes] = []
        self.scans = 0

    def get_many_windows(self, keys: Iterable[bytes]) -> list[Any]:
        keys = list(keys)
        self.pixel_keys += keys
        return self.inner.get_many_windows(keys)

    def get_many(self, keys: Iterable[bytes]) -> list[Any]:
        keys = list(keys)
        self.stats_keys += keys
        return self.inner.get_many(keys)

    def scan_keys(self, lo: bytes, hi: bytes) -> Iterator[bytes]:
        self.scans += 1
        return self.inner.scan_keys(lo, hi)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeServices, Any]]:
    s = services_for(tmp_path_factory.mktemp("pyramid"), "rocksdb")
    plan = stageiv_plan()
    ingest(s, plan)
    yield s, plan
    s.close()


def _counted(svc: NodeServices, overviews: bool = True) -> tuple[NodeServices, CountingStore]:
    out = NodeServices(svc.settings.model_copy(update={"graph_overviews": overviews}))
    counting = CountingStore(svc.block_store)
    out.__dict__["block_store"] = counting
    return out, counting


def _window(level: int, box: dict[str, float]) -> tuple[int, int, int, int]:
    p = pixel_size(level)
    return (
        int(np.floor((box["west"] + 180) / p)),
        int(np.floor((box["south"] + 90) / p)),
        int(np.floor((box["east"] + 180) / p)),
        int(np.floor((box["north"] + 90) / p)),
    )


def _centres(level: int, px: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    p = pixel_size(level)
    x0, y0, x1, y1 = px
    lons = -180 + (np.arange(x0, x1 + 1) + 0.5) * p
    lats = (-90 + (np.arange(y0, y1 + 1) + 0.5) * p)[::-1]
    return lons, lats


def _blocks(keys: list[bytes], layer: str, native: int) -> tuple[set[tuple[int, int]], set[int]]:
    """The NATIVE blocks ``(bx, by)`` the keys of ``layer`` cover, and their levels."""
    lid = layer_id(layer)
    found = [k for k in map(decode_key, keys) if k.layer == lid]
    xs, ys = morton_decode(np.array([k.morton for k in found], np.uint64))
    out = set()
    for k, x, y in zip(found, xs, ys, strict=True):
        d = native - k.level
        out |= {(int(x << d) + i, int(y << d) + j) for i in range(1 << d) for j in range(1 << d)}
    return out, {k.level for k in found}


def _numbers(result: Any) -> np.ndarray:
    return np.array(json.loads(result.data)["data"], dtype=np.float64)


BOX = {"west": -81.0, "south": 25.34, "east": -69.69, "north": 37.51}
"""Stage IV's native blocks are 4.19 degrees wide: this box crosses block boundaries
with partial blocks on all four sides (two of them hold rain) around 2 x 2 whole,
aligned blocks (one pyramid block one level up)."""


def test_reduce_spatial_reads_only_the_partial_edge_blocks(stage: tuple[NodeServices, Any]) -> None:
    svc, plan = stage
    level = svc.layers.get("stageiv").native_level
    x0, y0, x1, y1 = px = _window(level, BOX)
    stack = padded_stack(plan, level, *_centres(level, px)).reshape(23, -1)
    assert np.isfinite(stack).sum() > 100_000
    # independent block arithmetic: the blocks the window crosses, and those inside it
    crossed = {(bx, by) for bx in range(x0 >> 8, (x1 >> 8) + 1)
               for by in range(y0 >> 8, (y1 >> 8) + 1)}  # fmt: skip
    whole = {(bx, by) for bx, by in crossed if bx * 256 >= x0 and bx * 256 + 255 <= x1
             and by * 256 >= y0 and by * 256 + 255 <= y1}  # fmt: skip
    assert len(whole) >= 4 and len(crossed) - len(whole) >= 8
    for red, fn in REDUCERS.items():
        counted, store = _counted(svc)
        g = graph(
            load=node("load_collection", id="stageiv", spatial_extent=BOX, temporal_extent=None),
            r=node("reduce_spatial", data=ref("load"), reducer=reducer(red)),
            save=node("save_result", data=ref("r"), format="JSON"),
        )  # fmt: skip
        res = graphs.execute(g, counted)
        assert res.details["served_from_overviews"] == 1, red
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.array([fn(step) for step in stack])
        np.testing.assert_allclose(_numbers(res)[:, 0], want, rtol=1e-9, atol=1e-9, err_msg=red)
        assert store.scans == 0, red  # no key listing
        read, _ = _blocks(store.pixel_keys, "stageiv", level)
        assert read == crossed - whole and len(store.pixel_keys) == 23 * len(read), red
        served, levels = _blocks(store.stats_keys, "stats:stageiv", level)
        assert served == whole and min(levels) < level, red  # four whole siblings: parent


def _ring(x0: float, y0: float, r: float, n: int) -> list[list[float]]:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    pts = [[x0 + r * np.cos(t), y0 + 0.8 * r * np.sin(t)] for t in a]
    return [*pts, pts[0]]


HEXAGON = {"type": "Polygon", "coordinates": [_ring(-77.24, 33.73, 4.5, 6)]}
"""Holds one whole native block (bx 24, by 29) and cuts eight others."""
SMALL = {"type": "Polygon", "coordinates": [_ring(-80.0, 36.5, 0.09, 7)]}
"""Inside one block: pixels only."""


def test_aggregate_spatial_polygons_from_the_pyramid_and_edge_blocks(
    stage: tuple[NodeServices, Any],
) -> None:
    from shapely import contains_xy
    from shapely.geometry import shape

    svc, plan = stage
    level = svc.layers.get("stageiv").native_level
    box = {"west": -82.0, "south": 29.0, "east": -72.0, "north": 38.0}
    px = _window(level, box)
    lons, lats = _centres(level, px)
    stack = padded_stack(plan, level, lons, lats)
    feats = [{"type": "Feature", "properties": {}, "geometry": g} for g in (HEXAGON, SMALL)]
    fc = {"type": "FeatureCollection", "features": feats}
    insides = [contains_xy(shape(g), *np.meshgrid(lons, lats)) for g in (HEXAGON, SMALL)]
    assert insides[0].sum() > 50_000 and 0 < insides[1].sum() < 2_000
    for red, fn in REDUCERS.items():
        counted, store = _counted(svc)
        g = graph(
            load=node("load_collection", id="stageiv", spatial_extent=box, temporal_extent=None),
            zonal=node("aggregate_spatial", data=ref("load"), geometries=fc, reducer=reducer(red)),
            save=node("save_result", data=ref("zonal"), format="JSON"),
        )  # fmt: skip
        res = graphs.execute(g, counted)
        assert res.details["served_from_overviews"] == 1, red
        got = _numbers(res)
        assert got.shape == (2, 23, 1)
        for gi, inside in enumerate(insides):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                want = np.array([fn(step[inside]) for step in stack])
            np.testing.assert_allclose(got[gi, :, 0], want, rtol=1e-9, atol=1e-9,
                                       err_msg=f"{red} geometry {gi}")  # fmt: skip
        assert store.scans == 0
        read, _ = _blocks(store.pixel_keys, "stageiv", level)
        served, _ = _blocks(store.stats_keys, "stats:stageiv", level)
        # the hexagon's interior blocks come from the pyramid, never as pixels
        assert served == {(24, 29)} and not (read & served) and len(read) <= 8, red
        if red == "sd":  # the engine's own pixel path agrees
            raw, _ = _counted(svc, overviews=False)
            slow = graphs.execute(g, raw)
            assert slow.details["served_from_overviews"] == 0
            np.testing.assert_allclose(got, _numbers(slow), rtol=2e-5, atol=1e-5)
