"""Pixel store benchmark: ingest throughput vs raw RocksDB writes, pruned search vs full scan.

Data: a REAL field (ERA5 850 hPa temperature, ``sampledata.fetch("era5_nc")``), one
member/time per step, bilinearly upsampled to 4096 x 4096 and offset by +0.5 K per step
(semi-synthetic volume: 6 steps = 1.0e8 pixels), written as EPSG:4326 GeoTIFFs at
level 20 and ingested through the real path (read, warp, write). The fields lie on the
grid, so the warp is a copy; ``--shift 0.5`` moves them half a pixel east and south so
every pixel goes through a GDAL reprojection (nearest).

What each number includes:

- ingest = ``prepare_scene`` (GeoTIFF read, float32/NaN, warp onto the grid) +
  ``write_scene`` (existence/merge read of every target key, valid-pixel counts, encode
  with the store's ``auto`` codec, RocksDB write, layer registry update); not the
  overviews (timed separately).
- raw write = ``put_many`` of the same blocks (same count, same arrays, same codec, so
  encoding included) into another RocksDB store of the same kind, in the same process,
  right after each scene's ingest; building the list of blocks is outside the timer.

    /work/venv/bin/python bench/pixels.py [--steps 6] [--size 4096] [--shift 0]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from affine import Affine
from scipy.ndimage import zoom

from gravitas.kernels.grid import pixel_size
from gravitas.storage.blocks import Block, open_block_store
from gravitas.storage.keys import encode_key
from gravitas.storage.pixels import LayerRegistry
from gravitas.storage.pixels.index import prepare_scene, write_scene
from gravitas.storage.pixels.merge import merge_staged
from gravitas.storage.pixels.overviews import update_pyramid
from gravitas.storage.pixels.search import search_pixels
from gravitas.storage.sampledata import fetch

LEVEL = 20
SELECTIVITIES = (1e-2, 1e-4, 1e-6)


def make_fields(
    steps: int, size: int, out: Path, shift: float = 0.0
) -> tuple[list[Path], np.ndarray, tuple]:
    ds = xr.open_dataset(fetch("era5_nc"))
    t = ds["t"].sel(isobaricInhPa=850.0).values  # (number, time, lat, lon)
    p = pixel_size(LEVEL)
    west, north = 10.0 - (10.0 + 180) % (256 * p), 50.0
    north = -90 + np.ceil((north + 90) / (256 * p)) * 256 * p
    west, north = west + shift * p, north - shift * p
    paths, tops = [], []
    for k in range(steps):
        base = t[k % t.shape[0], k % t.shape[1]].astype(np.float32)
        field = zoom(base, (size / base.shape[0], size / base.shape[1]), order=1)
        field = (field[:size, :size] + 0.5 * k).astype(np.float32)
        tops.append(np.partition(field.ravel(), -size * size // 50)[-size * size // 50 :])
        path = out / f"era5_t850_step{k}_20170101T{k:02d}0000.tif"
        with rasterio.open(
            path, "w", driver="GTiff", width=size, height=size, count=1, dtype="float32",
            crs="EPSG:4326", transform=Affine(p, 0, west, 0, -p, north),
        ) as dst:  # fmt: skip
            dst.write(field, 1)
        paths.append(path)
    bbox = (west, north - size * p, west + size * p, north)
    return paths, np.concatenate(tops), bbox


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--shift", type=float, default=0.0, help="source offset in pixels")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gravitas-bench-") as tmp:
        root = Path(tmp)
        paths, tops, bbox = make_fields(args.steps, args.size, root, args.shift)
        store = open_block_store(f"rocksdb://{root / 'ingest.db'}")
        raw = open_block_store(f"rocksdb://{root / 'raw.db'}")
        registry = LayerRegistry(root / "layers.sqlite")
        t_prep = t_write = t_raw = t_ovr = 0.0
        pixels = 0
        for path in paths:
            t0 = time.perf_counter()
            plan = prepare_scene(path.stem, "bench", [path], layer="t850", level=LEVEL)
            t1 = time.perf_counter()
            fams = write_scene(store, registry, plan)
            for f in fams:  # what the overview agent does first: merge the staged blocks
                merge_staged(store, f.layer, plan.scene_id, f.level, f.timestamp, f.mortons)
            t_write += time.perf_counter() - t1
            t_prep += t1 - t0
            wl = plan.layers[0]
            blocks = [
                (encode_key("raw", LEVEL, m, wl.timestamp), Block(a, nodata=wl.warped.nodata))
                for m, _bx, _by, a in wl.warped.blocks()
            ]
            pixels += sum(b.array.size for _k, b in blocks)
            t0 = time.perf_counter()
            raw.put_many(blocks)
            t_raw += time.perf_counter() - t0
            t0 = time.perf_counter()
            info = registry.get("t850")
            update_pyramid(store, info, wl.timestamp, [m for f in fams for m in f.mortons])
            t_ovr += time.perf_counter() - t0
            del plan, blocks
        n_total = pixels
        ordered = np.sort(tops)[::-1]
        rows, result = [], {}
        search_pixels(store, registry, "t850", ">", 1e9, bbox, 0, 2**31, limit=0)  # warm-up
        for sel in SELECTIVITIES:
            k = max(1, round(sel * n_total))
            thr = float(ordered[k]) if k < len(ordered) else float(ordered[-1])
            t0 = time.perf_counter()
            pruned = search_pixels(store, registry, "t850", ">", thr, bbox, 0, 2**31, limit=0)
            tp = time.perf_counter() - t0
            t0 = time.perf_counter()
            full = search_pixels(
                store, registry, "t850", ">", thr, bbox, 0, 2**31, limit=0, prune=False
            )
            tf = time.perf_counter() - t0
            assert pruned.total == full.total, (pruned.total, full.total)
            rows.append((sel, pruned.total, pruned.blocks_read, full.blocks_read, tp, tf))
            result[f"search_speedup_{sel:.0e}".replace("e-0", "e-")] = round(tf / tp, 1)
            result[f"blocks_read_{sel:.0e}".replace("e-0", "e-")] = pruned.blocks_read
            result[f"search_s_{sel:.0e}".replace("e-0", "e-")] = round(tp, 4)
            result[f"full_scan_s_{sel:.0e}".replace("e-0", "e-")] = round(tf, 3)
        store.close()
        raw.close()
    t_ingest = t_prep + t_write
    ingest_rate, raw_rate = n_total / t_ingest, n_total / t_raw
    print(f"machine: {platform.machine()} python {platform.python_version()}")
    print(
        f"pixels stored: {n_total:,} ({args.steps} steps x {args.size}^2 at level {LEVEL}, "
        f"shift {args.shift:g} px)"
    )
    print(f"{'':28}{'seconds':>10}{'Mpx/s':>10}")
    print(f"{'ingest (read+warp+write)':28}{t_ingest:10.2f}{ingest_rate / 1e6:10.2f}")
    print(f"{'  read + warp':28}{t_prep:10.2f}{n_total / t_prep / 1e6:10.2f}")
    print(f"{'  merge + encode + write':28}{t_write:10.2f}{n_total / t_write / 1e6:10.2f}")
    print(f"{'raw RocksDB put_many':28}{t_raw:10.2f}{raw_rate / 1e6:10.2f}")
    print(f"{'overviews (all levels)':28}{t_ovr:10.2f}{n_total / t_ovr / 1e6:10.2f}")
    head = ("selectivity", "matches", "blocks", "of", "pruned s", "full s", "x")
    print("".join(f"{h:>{w}}" for h, w in zip(head, (12, 10, 8, 7, 10, 9, 8), strict=True)))
    for sel, m, br, bt, tp, tf in rows:
        print(f"{sel:12.0e}{m:10d}{br:8d}{bt:7d}{tp:10.4f}{tf:9.3f}{tf / tp:8.1f}")
    result.update(
        pixels=n_total,
        ingest_px_per_s=round(ingest_rate),
        read_warp_s=round(t_prep, 3),
        write_s=round(t_write, 3),
        raw_write_px_per_s=round(raw_rate),
        ingest_vs_raw=round(ingest_rate / raw_rate, 3),
        overview_px_per_s=round(n_total / t_ovr),
        blocks_total=rows[0][3],
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
