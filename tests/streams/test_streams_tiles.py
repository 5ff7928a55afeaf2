"""XYZ tiles of the node's edge on real Stage IV rain (Hurricane Florence): every tile
pixel equals the pixel store's value at the tile's pyramid level, reprojected to Web
Mercator independently by rasterio (GDAL's nearest neighbour, exact transformer);
nodata is transparent; hostile parameters are refused with a 400 naming the value and
nothing stored changes; ETag revalidation answers 304."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import matplotlib
import morecantile
import numpy as np
import pytest
import rasterio.warp
from affine import Affine
from PIL import Image
from rasterio.enums import Resampling

from gravitas.schemas.grid import pixel_size
from gravitas.schemas.settings import load_settings
from gravitas.storage.blocks import BlockStore
from gravitas.storage.pixels import LayerRegistry
from gravitas.storage.pixels.read import read_layer
from gravitas.streams.node import EmbeddedNode
from tests.fixtures.layers import LAYER, write_stageiv

TMS = morecantile.tms.get("WebMercatorQuad")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiles") / "node"
    write_stageiv(path, max_times=3)
    return path


@pytest.fixture
async def edge(data_dir: Path) -> AsyncIterator[tuple[EmbeddedNode, httpx.AsyncClient]]:
    settings = load_settings(data_dir=data_dir, http_port=0, broker="memory://")
    async with EmbeddedNode(settings, serve_http=True) as node:
        assert node.edge_url
        async with httpx.AsyncClient(base_url=node.edge_url, timeout=90) as http:
            yield node, http


def expected_level(z: int, native: int, top: int) -> int:
    """The coarsest level whose pixel is no larger than the tile's, within the pyramid."""
    tile_px = 360.0 / (256 * 2**z)
    level = next(lv for lv in range(1, 30) if pixel_size(lv) <= tile_px)
    return min(max(level, top), native)


def reference_tile(
    store: BlockStore, registry: LayerRegistry, z: int, x: int, y: int, ts: int, level: int
) -> np.ndarray:
    """The layer at ``level`` read from the store (read_layer), warped by rasterio onto
    the tile's Web Mercator grid (nearest, exact transformer); NaN = nodata."""
    w, s, e, n = TMS.bounds(morecantile.Tile(x, y, z))
    pad = 2 * pixel_size(level)
    arr = read_layer(
        store, registry, LAYER,
        (max(-180, w - pad), max(-90, s - pad), min(180, e + pad), min(90, n + pad)),
        ts, ts, level=level,
    )  # fmt: skip
    res = pixel_size(level)
    src_transform = Affine(
        res, 0, float(arr.lon[0]) - res / 2, 0, -res, float(arr.lat[0]) + res / 2
    )
    left, bottom, right, top = TMS.xy_bounds(morecantile.Tile(x, y, z))
    dst_transform = Affine((right - left) / 256, 0, left, 0, -(top - bottom) / 256, top)
    out = np.full((256, 256), np.nan, np.float32)
    rasterio.warp.reproject(
        np.ascontiguousarray(arr.values[0]),
        out,
        src_transform=src_transform,
        src_crs="EPSG:4326",
        src_nodata=np.nan,
        dst_transform=dst_transform,
        dst_crs="EPSG:3857",
        dst_nodata=np.nan,
        resampling=Resampling.nearest,
        tolerance=0,
    )
    return out


def expected_rgba(values: np.ndarray, lo: float, hi: float, cmap: str) -> np.ndarray:
    rgba = matplotlib.colormaps[cmap]((values - lo) / (hi - lo), bytes=True)
    rgba[np.isnan(values)] = 0
    return rgba


def decode(png: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size == (256, 256)
    return np.asarray(img.convert("RGBA"))


@pytest.mark.parametrize(
    ("lon", "lat", "z", "cmap"),
    [
        (-77.5, 34.5, 4, "gray"),
        (-78.0, 35.0, 6, "viridis"),
        (-77.9, 34.2, 8, "magma"),
        (-76.0, 36.0, 10, "Blues"),
    ],
)
async def test_tile_pixels_equal_the_store_at_the_tiles_level(
    edge: tuple[EmbeddedNode, httpx.AsyncClient],
    data_dir: Path,
    lon: float,
    lat: float,
    z: int,
    cmap: str,
) -> None:
    node, http = edge
    info = node.services.layers.get(LAYER)
    times = node.services.layers.times(LAYER)
    tile = TMS.tile(lon, lat, z)
    ts = times[1]
    lo, hi = 0.0, 40.0
    r = await http.get(
        f"/tiles/{LAYER}/{z}/{tile.x}/{tile.y}.png",
        params={"time": str(ts), "rescale": f"{lo},{hi}", "colormap": cmap},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    level = expected_level(z, info.native_level, info.top_level)
    assert int(r.headers["x-gravitas-level"]) == level
    ref = await asyncio.to_thread(
        reference_tile,
        node.services.block_store,
        node.services.layers,
        z,
        tile.x,
        tile.y,
        ts,
        level,
    )
    assert np.isfinite(ref).sum() > 1000, "the tile should hold data"
    got = decode(r.content)
    want = expected_rgba(ref, lo, hi, cmap)
    mismatched = np.argwhere((got != want).any(axis=2))
    assert len(mismatched) == 0, f"{len(mismatched)} pixels differ, first at {mismatched[:5]}"
    assert (got[..., 3] == 0).sum() == np.isnan(ref).sum()  # nodata transparent


async def test_time_selects_the_latest_step_at_or_before_and_default_rescale(
    edge: tuple[EmbeddedNode, httpx.AsyncClient],
) -> None:
    node, http = edge
    times = node.services.layers.times(LAYER)
    tile = TMS.tile(-77.5, 34.5, 5)
    url = f"/tiles/{LAYER}/5/{tile.x}/{tile.y}.png"
    latest = await http.get(url)
    assert latest.status_code == 200
    assert latest.headers["x-gravitas-time"].startswith("2018-09-1")
    between = await http.get(url, params={"time": str(times[1] + 1800)})
    exact = await http.get(url, params={"time": str(times[1])})
    iso = await http.get(url, params={"time": between.headers["x-gravitas-time"]})
    assert between.content == exact.content == iso.content
    assert between.headers["x-gravitas-time"] == exact.headers["x-gravitas-time"]
    # the default rescale is the layer's min/max at that time from the pyramid statistics
    lo, hi = (float(v) for v in exact.headers["x-gravitas-rescale"].split(","))
    assert lo == 0.0 and hi > 10.0
    listing = (await http.get("/tiles")).json()
    names = [la["name"] for la in listing["layers"]]
    assert names == [LAYER] and "viridis" in listing["colormaps"]


async def test_nodata_is_transparent_and_etag_revalidates(
    edge: tuple[EmbeddedNode, httpx.AsyncClient],
) -> None:
    _node, http = edge
    pacific = TMS.tile(-150.0, 10.0, 6)
    r = await http.get(f"/tiles/{LAYER}/6/{pacific.x}/{pacific.y}.png")
    assert r.status_code == 200
    assert (decode(r.content)[..., 3] == 0).all()
    tile = TMS.tile(-77.5, 34.5, 6)
    url = f"/tiles/{LAYER}/6/{tile.x}/{tile.y}.png"
    first = await http.get(url, params={"colormap": "plasma"})
    etag = first.headers["etag"]
    assert etag.startswith('"') and "max-age" in first.headers["cache-control"]
    again = await http.get(url, params={"colormap": "plasma"}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = await http.get(url, params={"colormap": "gray"}, headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag


HOSTILE = [
    (f"/tiles/{LAYER}/25/0/0.png", "", "z must be in 0..24"),
    (f"/tiles/{LAYER}/-1/0/0.png", "", "'-1'"),
    (f"/tiles/{LAYER}/abc/0/0.png", "", "'abc'"),
    (f"/tiles/{LAYER}/3/8/0.png", "", "x must be in 0..7 at this zoom, got 8"),
    (f"/tiles/{LAYER}/3/0/99999999999.png", "", "'99999999999'"),
    (f"/tiles/{LAYER}/0/0/1.png", "", "y must be in 0..0 at this zoom, got 1"),
    ("/tiles/nosuchlayer/3/1/1.png", "", "unknown layer 'nosuchlayer'"),
    ("/tiles/%2E%2E/3/1/1.png", "", "unknown layer '..'"),
    ("/tiles/x'%3B%20DROP%20TABLE%20layers--/3/1/1.png", "", "unknown layer"),
    (f"/tiles/{LAYER}/3/1/1.png", "rescale=1", "rescale must be 'min,max'"),
    (f"/tiles/{LAYER}/3/1/1.png", "rescale=a,b", "'a,b'"),
    (f"/tiles/{LAYER}/3/1/1.png", "rescale=5,1", "finite min < max, got '5,1'"),
    (f"/tiles/{LAYER}/3/1/1.png", "rescale=nan,1", "'nan,1'"),
    (f"/tiles/{LAYER}/3/1/1.png", "rescale=1e999,1e9999", "'1e999,1e9999'"),
    (f"/tiles/{LAYER}/3/1/1.png", "colormap=jet", "unknown colormap 'jet'"),
    (f"/tiles/{LAYER}/3/1/1.png", "colormap=__import__", "unknown colormap '__import__'"),
    (f"/tiles/{LAYER}/3/1/1.png", "time=yesterday", "'yesterday'"),
    (f"/tiles/{LAYER}/3/1/1.png", "time=1990-01-01T00:00:00Z", "no data at or before 1990"),
    (f"/tiles/{LAYER}/3/1/1.png", "format=tif", "unknown tile parameter 'format'"),
]


async def test_hostile_parameters_are_refused_and_nothing_changes(
    edge: tuple[EmbeddedNode, httpx.AsyncClient], data_dir: Path
) -> None:
    node, http = edge
    store, registry = node.services.block_store, node.services.layers
    before = (store.count(), [(i, registry.times(i.name)) for i in registry.list()])
    for path, query, message in HOSTILE:
        r = await http.get(path + (f"?{query}" if query else ""))
        assert r.status_code == 400, (path, query, r.status_code, r.text)
        detail = r.json()["detail"]
        assert message in detail, (path, query, detail)
        assert "Traceback" not in detail
    after = (store.count(), [(i, registry.times(i.name)) for i in registry.list()])
    assert after == before
