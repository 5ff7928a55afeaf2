"""Benchmark the methane matched filter on a full-size semi-synthetic EMIT scene.

Scene: 1280 x 1242 x 285 bands built in memory from real AVIRIS-NG spectra, the real
mag1c CH4 LUT and EMIT's noise model (gravitas.storage.sampledata.emit_scene).
Times: our sparse filter (30 iterations, float32 and float64), our single pass vs a numpy
single pass, the numpy mag1c transcription (tests/kernels/mag1c_reference.py, on a
column subset, extrapolated) and mag1c 1.2.0 itself (torch, run as a subprocess from the
venv made by bench/setup_mag1c.sh) on the same scene saved as ENVI (filter bands only).
The last line printed is one JSON object.

Our times are the best and the median of several repeats (the bench machine's cores are
shared). ``--skip-mag1c`` does not run mag1c and reuses the mag1c times recorded in
bench/README.md (full EMIT size only) for the speedups; ``--no-mag1c`` drops mag1c
altogether.

Usage: /work/venv/bin/python bench/methane.py [--rows 1280 --cols 1242] [--skip-mag1c]
       /work/venv/bin/python bench/methane.py --command [--repeat 3]   (whole command vs
       the filter alone on an EMIT-layout NetCDF: bench/methane_command.py)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import runpy
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from gravitas.kernels.ch4_target import select_window, unit_absorption_target
from gravitas.kernels.matched_filter import retrieve
from gravitas.storage.readers.envi import read_ch4_lut, read_envi, write_envi
from gravitas.storage.sampledata import fetch
from gravitas.storage.sampledata.emit_scene import build_emit_radiance

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("GRAVITAS_CACHE", Path.home() / ".cache" / "gravitas"))
MAG1C_PY = CACHE / "mag1c-venv" / "bin" / "python"


def _ref():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "mag1c_reference", ROOT / "tests" / "kernels" / "mag1c_reference.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def numpy_single_pass(cube: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Classic albedo-corrected matched filter, column by column, in numpy (float64)."""
    out = np.empty(cube.shape[:2])
    for c in range(cube.shape[1]):
        x = cube[:, c, :].astype(np.float64)
        mu = x.mean(axis=0)
        r = x @ mu / (mu @ mu)
        xm = x - mu
        cov = xm.T @ xm / x.shape[0]
        tt = t * 1e5 * mu
        w = np.linalg.solve(cov, tt)
        out[:, c] = xm @ w / (r * (tt @ w)) * 1e5
    return out


def timed(fn, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(best, median) wall seconds over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


FULL_SIZE = (1280, 1242)
_RECORDED = re.compile(
    r"\| mag1c 1\.2\.0 float64 / float32 \(its own timer\) \| ([0-9.]+) s / ([0-9.]+) s \|"
)


def recorded_mag1c() -> tuple[float, float]:
    """mag1c's full-size (float64, float32) seconds as recorded in bench/README.md."""
    m = _RECORDED.search((ROOT / "bench" / "README.md").read_text(encoding="utf-8"))
    if m is None:
        raise RuntimeError("bench/README.md has no full-size mag1c row to reuse; run mag1c")
    return float(m.group(1)), float(m.group(2))


def run_mag1c(path: Path, out: Path, single: bool) -> tuple[float, float, np.ndarray]:
    cmd = [str(MAG1C_PY), "-m", "mag1c", str(path), "--out", str(out), "-o"]
    if single:
        cmd.append("--single")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"mag1c failed ({proc.returncode}): {proc.stderr[-2000:]}")
    m = re.search(r"completed in ([0-9.]+) seconds", proc.stdout)
    inner = float(m.group(1)) if m else wall
    data, _ = read_envi(out)
    return inner, wall, np.asarray(data[:, :, 3], dtype=np.float64)


def main() -> None:
    if "--command" in sys.argv:  # the whole `gravitas methane` command: bench/methane_command.py
        sys.argv.remove("--command")
        runpy.run_path(str(Path(__file__).with_name("methane_command.py")), run_name="__main__")
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1280)
    ap.add_argument("--cols", type=int, default=1242)
    ap.add_argument("--ref-cols", type=int, default=32)
    ap.add_argument("--no-mag1c", action="store_true")
    ap.add_argument("--skip-mag1c", action="store_true", help="reuse bench/README.md's times")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    t0 = time.perf_counter()
    cube, truth = build_emit_radiance(args.rows, args.cols, seed=0)
    gen_s = time.perf_counter() - t0
    window = select_window(truth.wavelengths)
    target = unit_absorption_target(read_ch4_lut(fetch("ch4_lut")), truth.wavelengths, truth.fwhm)
    warm = np.ascontiguousarray(cube[:64, :8])  # same array layout as the full cube
    retrieve(warm, target, bands=window)  # compile / load the numba cache
    retrieve(warm, target, bands=window, dtype=np.float64)
    retrieve(warm, target, bands=window, iterations=0, nonnegative=False)
    res: dict[str, float] = {}
    res["full_scene_s"], res["full_scene_median_s"] = timed(
        lambda: retrieve(cube, target, bands=window), args.repeat
    )
    res["full_scene_float64_s"], res["full_scene_float64_median_s"] = timed(
        lambda: retrieve(cube, target, bands=window, dtype=np.float64), max(1, args.repeat // 2)
    )
    ours64 = retrieve(cube, target, bands=window, dtype=np.float64).enhancement
    ours32 = retrieve(cube, target, bands=window).enhancement
    res["single_pass_s"], res["single_pass_median_s"] = timed(
        lambda: retrieve(cube, target, bands=window, iterations=0, nonnegative=False),
        args.repeat,
    )
    sub = np.ascontiguousarray(cube[..., window])
    tw = target[window]
    t0 = time.perf_counter()
    np_single = numpy_single_pass(sub, tw)
    res["numpy_single_pass_s"] = time.perf_counter() - t0
    ours_single = retrieve(
        cube, target, bands=window, iterations=0, nonnegative=False, dtype=np.float64
    )
    res["single_pass_max_abs_diff_ppm_m"] = float(
        np.max(np.abs(ours_single.enhancement - np_single))
    )
    ref = _ref()
    k = min(args.ref_cols, args.cols)
    t0 = time.perf_counter()
    ref_part = ref.retrieve(sub[:, :k].astype(np.float64), tw * 1e5, num_iter=30)
    res["numpy_mag1c_float64_s_extrapolated"] = (time.perf_counter() - t0) * args.cols / k
    res["max_abs_diff_vs_numpy_mag1c_ppm_m"] = float(np.max(np.abs(ours64[:, :k] - ref_part)))
    res["max_abs_diff_ppm_m"] = res["max_abs_diff_vs_numpy_mag1c_ppm_m"]
    res["corr_float32_vs_float64"] = float(np.corrcoef(ours32.ravel(), ours64.ravel())[0, 1])
    note = ""
    if args.skip_mag1c and (args.rows, args.cols) == FULL_SIZE:
        res["mag1c_float64_s"], res["mag1c_float32_s"] = recorded_mag1c()
        res["speedup_vs_mag1c_float32"] = res["mag1c_float32_s"] / res["full_scene_s"]
        res["speedup_vs_mag1c_float64"] = res["mag1c_float64_s"] / res["full_scene_float64_s"]
        note = "mag1c NOT run (--skip-mag1c): its times are those recorded in bench/README.md"
    elif not args.skip_mag1c and not args.no_mag1c and MAG1C_PY.exists():
        with tempfile.TemporaryDirectory() as tmp:
            path = write_envi(
                Path(tmp) / "emit_semisynthetic_rdn", sub, interleave="bil",
                wavelengths=truth.wavelengths[window], fwhm=truth.fwhm[window],
            )  # fmt: skip
            for single, key in ((False, "mag1c_float64"), (True, "mag1c_float32")):
                inner, wall, mf = run_mag1c(path, Path(tmp) / f"{key}_out", single)
                res[f"{key}_s"] = inner
                res[f"{key}_wall_s"] = wall
                ours = ours64 if not single else ours32
                # mag1c always censors the first and last line (-9999): compare the rest
                ok = mf > -9990
                res[f"{key}_nodata_pixels"] = float((~ok).sum())
                res[f"{key}_max_abs_diff_ppm_m"] = float(np.max(np.abs(ours[ok] - mf[ok])))
                res[f"{key}_corr"] = float(np.corrcoef(ours[ok], mf[ok])[0, 1])
        res["max_abs_diff_ppm_m"] = res["mag1c_float64_max_abs_diff_ppm_m"]
        res["speedup_vs_mag1c_float32"] = res["mag1c_float32_s"] / res["full_scene_s"]
        res["speedup_vs_mag1c_float64"] = res["mag1c_float64_s"] / res["full_scene_float64_s"]
    else:
        res["mag1c_float64_s"] = float("nan")
        res["mag1c_float32_s"] = float("nan")
        res["speedup_vs_mag1c_float32"] = float("nan")
        res["speedup_vs_numpy_mag1c"] = (
            res["numpy_mag1c_float64_s_extrapolated"] / res["full_scene_s"]
        )
    res.setdefault(
        "speedup_vs_numpy_mag1c", res["numpy_mag1c_float64_s_extrapolated"] / res["full_scene_s"]
    )
    res["scene"] = f"{args.rows}x{args.cols}x285 ({int(window.sum())} filter bands)"  # type: ignore[assignment]
    res["generate_s"] = gen_s
    res["cpus"] = os.cpu_count() or 0
    res["numba_threads"] = numba.get_num_threads()
    res["repeats"] = args.repeat
    print(f"{'measure':40s} value")
    for key, value in res.items():
        print(f"{key:40s} {value:.4g}" if isinstance(value, float) else f"{key:40s} {value}")
    if args.skip_mag1c and not note:
        note = "mag1c NOT run (--skip-mag1c): no recorded times for this scene size"
    if note:
        print(note)
        res["mag1c_note"] = note  # type: ignore[assignment]
    print(json.dumps(res))


if __name__ == "__main__":
    main()
