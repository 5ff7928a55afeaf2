"""Pixel store benchmark at 1e7..1e9 stored pixels: ingest vs raw writes, pruned search vs
brute force and a full scan, at fixed selectivities and at a fixed hit count.

Data: REAL fields (ERA5 t850, t500, z500 from ``sampledata.fetch("era5_nc")``, one
member/time per step), bilinearly upsampled and offset per step (semi-synthetic), one
GeoTIFF per layer and step, written just before its ingest and deleted after it (the
data is streamed: one scene in memory at a time, never the whole volume). ``--layers``
layers x ``--steps`` daily steps; the scene side grows with ``--pixels`` so every size
has the same layers and time steps and only the area grows. Sources (``--source``):

- ``utm`` (default): EPSG:32633 at 60 m, as users bring scenes: every pixel is reprojected
  (nearest) onto the level-20 grid;
- ``shift``: WGS 84 at the grid's pixel size, half a pixel off the grid (reprojected);
- ``grid``: WGS 84 on the grid (the warp is a copy).

What each number includes:

- ingest = ``prepare_scene`` (GeoTIFF read, warp onto the grid) + ``write_scene``
  (merge read, valid counts, ``auto`` codec, RocksDB write, registry) + ``merge_staged``;
  overviews are timed separately.
- raw write = ``put_many`` of the same blocks (same arrays, same codec) into a second
  RocksDB store in the same process right after each scene.
- search: ``search_pixels`` over every layer (all steps, the data's bbox), best of
  ``--repeat`` runs; thresholds are exact quantiles of the stored values; every search is
  checked against brute force (the values above the threshold taken from the warped
  arrays before they were stored: same count, same sorted values), and at 1e-4 against a
  full scan (``prune=False``) too.

    .venv/bin/python bench/pixels.py [--pixels 1e7,1e8] [--layers 3] [--steps 24]
        [--source utm|shift|grid] [--hits 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
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
SELECTIVITIES = (1e-4, 1e-6)
FIELDS = (("t", 850.0), ("t", 500.0), ("z", 500.0))
UTM = "EPSG:32633"
UTM_RES = 60.0
T0 = datetime(2017, 1, 1, 10, tzinfo=UTC)


class Source:
    """Writes one GeoTIFF per (layer, step) of a ``side`` x ``side`` field."""

    def __init__(self, kind: str, side: int) -> None:
        ds = xr.open_dataset(fetch("era5_nc"))
        self.fields = [ds[v].sel(isobaricInhPa=lev).values for v, lev in FIELDS]
        self.kind, self.side = kind, side
        p = pixel_size(LEVEL)
        if kind == "utm":
            self.crs, res = UTM, UTM_RES
            self.west, self.north = 330_000.0, 5_822_040.0
        else:
            self.crs, res = "EPSG:4326", p
            west, north = 10.0 - (10.0 + 180) % (256 * p), 50.0
            north = -90 + math.ceil((north + 90) / (256 * p)) * 256 * p
            shift = 0.5 if kind == "shift" else 0.0
            self.west, self.north = west + shift * p, north - shift * p
        self.transform = Affine(res, 0, self.west, 0, -res, self.north)
        from rasterio.warp import transform_bounds

        east, south = self.west + side * res, self.north - side * res
        self.bbox = transform_bounds(self.crs, "EPSG:4326", self.west, south, east, self.north)

    def write(self, layer: int, step: int, out: Path) -> Path:
        f = self.fields[layer]
        base = f[step % f.shape[0], step % f.shape[1]].astype(np.float32)
        if FIELDS[layer][0] == "z":
            base = base / 9.80665  # geopotential height, m
        n = self.side
        field = zoom(base, (n / base.shape[0], n / base.shape[1]), order=1)
        field = (field[:n, :n] + 0.5 * step).astype(np.float32)
        when = T0 + timedelta(days=step)
        path = out / f"{layer_name(layer)}_{when:%Y%m%dT%H%M%S}.tif"
        with rasterio.open(
            path, "w", driver="GTiff", width=n, height=n, count=1, dtype="float32",
            crs=self.crs, transform=self.transform,
        ) as dst:  # fmt: skip
            dst.write(field, 1)
        return path


def layer_name(i: int) -> str:
    v, lev = FIELDS[i]
    return f"{v}{int(lev)}"


def side_for(kind: str, target: float, scenes: int, tmp: Path) -> int:
    """Source side whose warped scenes hold about ``target / scenes`` grid pixels."""
    probe = 512
    src = Source(kind, probe)
    path = src.write(0, 0, tmp)
    plan = prepare_scene(path.stem, "bench", [path], layer="probe", level=LEVEL)
    stored = sum(a.size for _m, _x, _y, a in plan.layers[0].warped.blocks())
    path.unlink()
    per_px = stored / probe**2
    return max(64, round(math.sqrt(target / scenes / per_px) / 16) * 16)


def run_size(args: argparse.Namespace, target: float, tmp: Path) -> dict[str, object]:
    n_layers, steps = args.layers, args.steps
    root = tmp / f"n{target:.0e}"
    root.mkdir()
    side = side_for(args.source, target, n_layers * steps, root)
    src = Source(args.source, side)
    store = open_block_store(f"rocksdb://{root / 'ingest.db'}")
    raw = open_block_store(f"rocksdb://{root / 'raw.db'}")
    registry = LayerRegistry(root / "layers.sqlite")
    keep = max(args.hits, max(round(s * target) for s in SELECTIVITIES)) + 1
    tops: list[np.ndarray] = []
    t_prep = t_write = t_raw = t_ovr = 0.0
    pixels = blocks_n = 0
    for step in range(steps):
        for li in range(n_layers):
            path = src.write(li, step, root)
            t0 = time.perf_counter()
            plan = prepare_scene(path.stem, "bench", [path], layer=layer_name(li), level=LEVEL)
            t1 = time.perf_counter()
            fams = write_scene(store, registry, plan)
            for f in fams:  # what the overview agent does first: merge the staged blocks
                merge_staged(store, f.layer, plan.scene_id, f.level, f.timestamp, f.mortons)
            t2 = time.perf_counter()
            t_prep += t1 - t0
            t_write += t2 - t1
            wl = plan.layers[0]
            blocks = [
                (encode_key("raw", LEVEL, m, wl.timestamp), Block(a, nodata=wl.warped.nodata))
                for m, _bx, _by, a in wl.warped.blocks()
            ]
            pixels += sum(b.array.size for _k, b in blocks)
            blocks_n += len(blocks)
            t0 = time.perf_counter()
            raw.put_many(blocks)
            t_raw += time.perf_counter() - t0
            vals = wl.warped.array[~np.isnan(wl.warped.array)]
            tops.append(np.partition(vals, -keep)[-keep:] if vals.size > keep else vals)
            t0 = time.perf_counter()
            info = registry.get(wl.layer)
            update_pyramid(store, info, wl.timestamp, [m for f in fams for m in f.mortons])
            t_ovr += time.perf_counter() - t0
            del plan, blocks, vals
            path.unlink()
        print(f"  {target:.0e}: step {step + 1}/{steps}", flush=True)
    raw.close()
    shutil.rmtree(root / "raw.db")
    ordered = np.sort(np.concatenate(tops))[::-1]
    del tops
    layers = [layer_name(i) for i in range(n_layers)]
    search(store, registry, layers, src.bbox, 1e30, full=False)  # warm-up (page cache, registry)
    out: dict[str, object] = {
        "pixels": pixels,
        "blocks": blocks_n,
        "side": side,
        "ingest_px_per_s": round(pixels / (t_prep + t_write)),
        "raw_write_px_per_s": round(pixels / t_raw),
        "ingest_vs_raw": round((pixels / (t_prep + t_write)) / (pixels / t_raw), 3),
        "read_warp_s": round(t_prep, 2),
        "write_s": round(t_write, 2),
        "raw_s": round(t_raw, 2),
        "overview_s": round(t_ovr, 2),
    }
    cases = [(f"sel_{s:.0e}".replace("e-0", "e-"), round(s * pixels)) for s in SELECTIVITIES]
    cases.append((f"hits_{args.hits}", args.hits))
    for name, k in cases:
        k = max(1, min(k, len(ordered) - 1))
        thr = float(ordered[k])
        expect = np.sort(ordered[ordered > thr])
        best, hits = math.inf, None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            got = search(store, registry, layers, src.bbox, thr, full=False)
            best = min(best, time.perf_counter() - t0)
            hits = got
        assert hits is not None
        total, values, blocks_read, blocks_total = hits
        assert total == len(expect) and np.array_equal(np.sort(values), expect), (name, total)
        row: dict[str, object] = {
            "hits": total,
            "search_s": round(best, 4),
            "blocks_read": blocks_read,
            "blocks_total": blocks_total,
        }
        if name == "sel_1e-4":
            t0 = time.perf_counter()
            full = search(store, registry, layers, src.bbox, thr, full=True)
            tf = time.perf_counter() - t0
            assert full[0] == total and np.array_equal(np.sort(full[1]), expect)
            row.update(full_scan_s=round(tf, 3), speedup_vs_full_scan=round(tf / best, 1))
        out[name] = row
    store.close()
    registry.close()
    shutil.rmtree(root)
    return out


def search(
    store: object,
    registry: LayerRegistry,
    layers: list[str],
    bbox: tuple[float, float, float, float],
    thr: float,
    *,
    full: bool,
) -> tuple[int, np.ndarray, int, int]:
    """``> thr`` over every layer in ``bbox`` (the data's): (matches, values, blocks read,
    blocks in the window)."""
    total, blocks_read, blocks_total, values = 0, 0, 0, []
    for layer in layers:
        h = search_pixels(
            store,  # type: ignore[arg-type]
            registry, layer, ">", thr, bbox, 0, 2**31, prune=not full,
        )  # fmt: skip
        total += h.total
        blocks_read += h.blocks_read
        blocks_total += h.blocks_total
        values.append(h.value.astype(np.float32))
    return total, np.concatenate(values), blocks_read, blocks_total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pixels", default="1e7,1e8", help="comma-separated stored-pixel sizes")
    ap.add_argument("--layers", type=int, default=3, choices=(1, 2, 3))
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--source", default="utm", choices=("utm", "shift", "grid"))
    ap.add_argument("--shift", type=float, default=None, help="old option: 0.5 = --source shift")
    ap.add_argument("--hits", type=int, default=1000, help="the fixed hit count compared")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.shift is not None:
        args.source = "shift" if args.shift else "grid"
    sizes = [float(s) for s in args.pixels.split(",")]
    load0 = os.getloadavg()
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="gravitas-bench-") as tmp:
        for n in sizes:
            results[f"{n:.0e}"] = run_size(args, n, Path(tmp))
            print(f"  {n:.0e} done: {json.dumps(results[f'{n:.0e}'])}", flush=True)
    print(f"machine: {platform.machine()} python {platform.python_version()}")
    print(f"load average before / after: {load0[0]:.1f} / {os.getloadavg()[0]:.1f}")
    print(
        f"source {args.source}, {args.layers} layers x {args.steps} steps, level {LEVEL}, "
        f"search over all layers and steps, best of {args.repeat}"
    )
    head = ("size", "stored px", "ingest Mpx/s", "raw Mpx/s", "ingest/raw", "warp s", "ovr s")
    print("".join(f"{h:>13}" for h in head))
    for key, r in results.items():
        print(
            f"{key:>13}{r['pixels']:>13,}{r['ingest_px_per_s'] / 1e6:>13.1f}"  # type: ignore[operator]
            f"{r['raw_write_px_per_s'] / 1e6:>13.1f}{r['ingest_vs_raw']:>13.3f}"  # type: ignore[operator]
            f"{r['read_warp_s']:>13}{r['overview_s']:>13}"
        )
    head = ("size", "case", "hits", "search s", "blocks", "of", "full s", "x full")
    print("".join(f"{h:>11}" for h in head))
    for key, r in results.items():
        for case in [c for c in r if c.startswith(("sel_", "hits_"))]:
            c = r[case]
            assert isinstance(c, dict)
            print(
                f"{key:>11}{case:>11}{c['hits']:>11}{c['search_s']:>11}{c['blocks_read']:>11}"
                f"{c['blocks_total']:>11}{c.get('full_scan_s', '-'):>11}"
                f"{c.get('speedup_vs_full_scan', '-'):>11}"
            )
    keys = list(results)
    summary: dict[str, object] = {"source": args.source, "sizes": results}
    if len(keys) > 1:
        lo, hi = results[keys[0]], results[keys[-1]]
        case = f"hits_{args.hits}"
        growth = hi[case]["search_s"] / lo[case]["search_s"]  # type: ignore[index]
        summary[f"search_growth_{keys[0]}_to_{keys[-1]}_at_{args.hits}_hits"] = round(growth, 2)
        print(f"search time at {args.hits} hits, {keys[-1]} / {keys[0]}: {growth:.2f}x (goal <= 2)")
    last = results[keys[-1]]
    summary["ingest_vs_raw"] = last["ingest_vs_raw"]
    summary["speedup_vs_full_scan_1e-4"] = last["sel_1e-4"]["speedup_vs_full_scan"]  # type: ignore[index]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
