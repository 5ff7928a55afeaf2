"""Map tile latency: XYZ tiles from the overview pyramids vs rio-tiler on the same data
as a Cloud-Optimized GeoTIFF, in one run.

Data: REAL Stage IV hourly rain of Hurricane Florence (``sampledata.fetch("stageiv_nc")``,
native level 15, pyramid to level 7) written into a RocksDB block store through the real
path (``prepare_scene``, ``write_scene``, ``update_pyramid``). The COG holds the same
values: the layer read back at its native level (``read_layer``) for one hour, written
EPSG:4326 with 256 x 256 internal tiles, DEFLATE, NaN nodata and AVERAGE overviews
(GDAL's COG driver).

Tiles: every Web Mercator tile at zooms 5..9 over the data's box (``--max-tiles`` caps
them, spread evenly), one time step, ``rescale=0,50``, ``viridis``, 256 x 256 PNG. Each
path is warmed with one pass, then timed tile by tile (``perf_counter``) on a second:

- pyramids = ``render_tile`` (parameter checks, level choice, block reads and decode,
  nearest sampling, colormap, PNG), the function behind ``/tiles/...`` without HTTP;
- rio-tiler = what a titiler request does without HTTP: open the COG with ``Reader``,
  ``tile(x, y, z, resampling_method="nearest")``, ``rescale``, ``render(PNG, viridis)``;
- rio-tiler (kept open) = the same with one ``Reader`` for all tiles.

    .venv/bin/python bench/tiles.py [--max-tiles 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import morecantile
import numpy as np
import rasterio
from affine import Affine

from gravitas.schemas.grid import pixel_size
from gravitas.storage.blocks import open_block_store
from gravitas.storage.pixels import LayerRegistry
from gravitas.storage.pixels.index import prepare_scene, write_scene
from gravitas.storage.pixels.overviews import update_pyramid
from gravitas.storage.pixels.read import read_layer
from gravitas.storage.pixels.tiles import TileParams, render_tile
from gravitas.storage.sampledata import fetch

BOX = (-84.0, 28.0, -71.0, 42.0)
ZOOMS = range(5, 10)
RESCALE = (0.0, 50.0)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-tiles", type=int, default=200)
    args = ap.parse_args()
    from rio_tiler.colormap import cmap
    from rio_tiler.io import Reader

    tms = morecantile.tms.get("WebMercatorQuad")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plan = prepare_scene(
            "stageiv-florence", "stageiv", [Path(fetch("stageiv_nc"))], layer="stageiv"
        )
        plan.layers = plan.layers[:3]
        store = open_block_store(f"rocksdb://{root / 'blocks'}")
        registry = LayerRegistry(root / "layers.sqlite")
        for fam in write_scene(store, registry, plan):
            update_pyramid(store, registry.get(fam.layer), fam.timestamp, fam.mortons)
        info = registry.get("stageiv")
        ts = registry.times("stageiv")[1]
        native = read_layer(store, registry, "stageiv", BOX, ts, ts, level=info.native_level)
        res = pixel_size(info.native_level)
        transform = Affine(
            res, 0, float(native.lon[0]) - res / 2, 0, -res, float(native.lat[0]) + res / 2
        )
        cog = root / "stageiv.tif"
        arr = np.ascontiguousarray(native.values[0], dtype=np.float32)
        with rasterio.open(
            cog, "w", driver="COG", width=arr.shape[1], height=arr.shape[0], count=1,
            dtype="float32", crs="EPSG:4326", transform=transform, nodata=float("nan"),
            BLOCKSIZE=256, COMPRESS="DEFLATE", OVERVIEW_RESAMPLING="AVERAGE",
        ) as dst:  # fmt: skip
            dst.write(arr, 1)
        tiles = [t for z in ZOOMS for t in tms.tiles(*BOX, [z])]
        if len(tiles) > args.max_tiles:
            tiles = [tiles[i] for i in np.linspace(0, len(tiles) - 1, args.max_tiles).astype(int)]
        viridis = cmap.get("viridis")

        def pyramids(t: morecantile.Tile) -> bytes:
            p = TileParams("stageiv", t.z, t.x, t.y, ts, RESCALE, "viridis")
            return render_tile(store, registry, p).png

        def riotiler(t: morecantile.Tile, src: Reader | None = None) -> bytes:
            def draw(r: Reader) -> bytes:
                img = r.tile(t.x, t.y, t.z, tilesize=256, resampling_method="nearest")
                img.rescale(in_range=(RESCALE,))
                return img.render(img_format="PNG", colormap=viridis)

            if src is not None:
                return draw(src)
            with Reader(str(cog)) as r:
                return draw(r)

        def timed(fn, *extra) -> list[float]:  # type: ignore[no-untyped-def]
            for t in tiles:  # warm caches (RocksDB, GDAL)
                fn(t, *extra)
            out = []
            for t in tiles:
                t0 = time.perf_counter()
                fn(t, *extra)
                out.append(time.perf_counter() - t0)
            return out

        ours = timed(pyramids)
        theirs = timed(riotiler)
        with Reader(str(cog)) as kept:
            theirs_open = timed(riotiler, kept)
        store.close()
        registry.close()
    result = {
        "bench": "tiles",
        "tiles": len(tiles),
        "zooms": [ZOOMS.start, ZOOMS.stop - 1],
        "pyramids_p50_ms": round(pct(ours, 50), 2),
        "pyramids_p99_ms": round(pct(ours, 99), 2),
        "riotiler_p50_ms": round(pct(theirs, 50), 2),
        "riotiler_p99_ms": round(pct(theirs, 99), 2),
        "riotiler_open_p50_ms": round(pct(theirs_open, 50), 2),
        "riotiler_open_p99_ms": round(pct(theirs_open, 99), 2),
        "speedup_p50": round(pct(theirs, 50) / pct(ours, 50), 2),
        "speedup_p50_vs_open": round(pct(theirs_open, 50) / pct(ours, 50), 2),
        "goal_p50_le_20ms": pct(ours, 50) <= 20.0,
        "goal_5x": pct(theirs, 50) / pct(ours, 50) >= 5.0,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}",
    }
    for k, v in result.items():
        if k != "bench":
            print(f"{k:>24}: {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
