"""The whole ``gravitas methane`` command on a full-size EMIT-layout NetCDF vs the filter alone.

Scene: 1280 x 1242 x 285 bands, semi-synthetic (real AVIRIS-NG spectra, the real mag1c
CH4 LUT plumes, EMIT's noise model: ``make_emit_scene``), written once with the EMIT L1B
NetCDF writer (``write_emit_l1b``: radiance (downtrack, crosstrack, bands), float32,
chunks 64 x 64 x 285, zlib level 1, location group with GLT and lat/lon). Not timed.

Timed, in one run:

- filter alone: ``retrieve`` (sparse, 30 iterations) on the window cube already in memory
  (the baseline; best of ``--repeat``);
- the command in this process, phase by phase, with the same calls ``gravitas methane``
  makes: read (NetCDF, window bands), LUT + target, filter, georeference (GLT),
  plumes, COG, quicklook PNG, GeoJSON (best of ``--repeat`` for each phase's total);
- the command as a user runs it: ``gravitas methane SCENE --out DIR`` in a subprocess
  (interpreter start, imports, Numba cache load included; best of ``--repeat``).

The command writes the COG, quicklook and GeoJSON; it makes no STAC item (that is the
node's methane agent), so no STAC phase is timed.

    .venv/bin/python bench/methane_command.py [--rows 1280 --cols 1242] [--repeat 3]
        [--scene EMIT.nc]   (reuse a file built by an earlier run)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gravitas.agents.methane_retrieval import (
    LAYER,
    _pixel_area,
    plume_features,
    read_window,
    write_cog,
)
from gravitas.kernels.ch4_target import unit_absorption_target
from gravitas.kernels.matched_filter import retrieve
from gravitas.kernels.plumes import find_plumes
from gravitas.storage.readers.envi import read_ch4_lut
from gravitas.storage.readers.scene import georeference
from gravitas.storage.sampledata import fetch
from gravitas.storage.sampledata.emit_scene import make_emit_scene
from gravitas.streams.cli.methane_cmd import _is_lonlat, render_quicklook

WINDOW = (2122.0, 2488.0)


def phases(path: Path, out: Path) -> tuple[dict[str, float], np.ndarray]:
    """One in-process run of the command's steps: seconds per phase, the enhancement."""
    t: dict[str, float] = {}

    def clock(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        res = fn()
        t[name] = time.perf_counter() - t0
        return res

    scene = clock("read", lambda: read_window(path, WINDOW))
    lut = clock("lut_target", lambda: read_ch4_lut(fetch("ch4_lut")))
    target = unit_absorption_target(lut, scene.wavelengths, scene.fwhm)
    result = clock("filter", lambda: retrieve(scene.radiance, target, iterations=30))
    grid = clock(
        "georeference",
        lambda: georeference(result.enhancement, scene.glt, scene.geotransform, scene.crs_wkt),
    )
    labels, plumes = clock(
        "plumes", lambda: find_plumes(grid.array, pixel_area_m2=_pixel_area(grid))
    )
    clock("cog", lambda: write_cog(grid, out / f"{LAYER}.tif"))
    gt = grid.geotransform if _is_lonlat(grid.crs_wkt) else None
    png = out / "quicklook.png"
    clock("quicklook", lambda: render_quicklook(grid.array, labels, png, geotransform=gt))

    def geojson() -> None:
        from gravitas.agents.methane_retrieval import MethaneProduct

        product = MethaneProduct(
            path=path, sensor=result, grid=grid, labels=labels, plumes=plumes,
            background_mean_ppm_m=0.0, max_ppm_m=0.0, acquired=None,  # type: ignore[arg-type]
            bands=int(scene.radiance.shape[2]), retrieval_s=t["filter"],
        )  # fmt: skip
        (out / "plumes.geojson").write_text(json.dumps(plume_features(product, path.stem)))

    clock("geojson", geojson)
    return t, grid.array


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1280)
    ap.add_argument("--cols", type=int, default=1242)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scene", type=Path, help="reuse this EMIT-layout file (not built)")
    args = ap.parse_args()
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="gravitas-methane-") as tmp:
        root = Path(tmp)
        scene = args.scene or root / "EMIT_L1B_RAD_001_20220815T042838_2222703_003.nc"
        t0 = time.perf_counter()
        if args.scene is None:
            make_emit_scene(scene, args.rows, args.cols)
        t_build = time.perf_counter() - t0
        size = scene.stat().st_size
        # the baseline: the filter alone on the window cube in memory
        sc = read_window(scene, WINDOW)
        target = unit_absorption_target(read_ch4_lut(fetch("ch4_lut")), sc.wavelengths, sc.fwhm)
        retrieve(sc.radiance[:64, :64], target, iterations=30)  # JIT / cache load
        filt = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            retrieve(sc.radiance, target, iterations=30)
            filt.append(time.perf_counter() - t0)
        del sc
        runs = []
        for k in range(args.repeat):
            out = root / f"inproc{k}"
            out.mkdir()
            runs.append(phases(scene, out)[0])
        best_in = min(runs, key=lambda r: sum(r.values()))
        cli = []
        exe = Path(sys.executable).with_name("gravitas")
        for k in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run(
                [str(exe), "methane", str(scene), "--out", str(root / f"cli{k}")],
                check=True, capture_output=True,
            )  # fmt: skip
            cli.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import gravitas.streams.cli.main"], check=True)
        t_import = time.perf_counter() - t0
        t0 = time.perf_counter()  # what `gravitas methane` imports before it reads (entry.py)
        light = "from gravitas.streams.cli.entry import _methane_app; _methane_app()"
        subprocess.run([sys.executable, "-c", light], check=True)
        t_import_light = time.perf_counter() - t0
    f = min(filt)
    total_in = sum(best_in.values())
    print(f"machine: {platform.machine()} python {platform.python_version()} cpus {os.cpu_count()}")
    print(f"load average before / after: {load0[0]:.1f} / {os.getloadavg()[0]:.1f}")
    print(
        f"scene {args.rows} x {args.cols} x 285, file {size / 1e9:.2f} GB, built in {t_build:.0f} s"
    )
    print(f"{'phase (in process, best run)':32}{'s':>8}{'share':>8}")
    for name, s in best_in.items():
        print(f"{name:32}{s:8.2f}{s / total_in:8.1%}")
    print(f"{'total in process':32}{total_in:8.2f}")
    print(f"{'filter alone (baseline)':32}{f:8.2f}")
    print(f"{'gravitas methane (subprocess)':32}{min(cli):8.2f}")
    print(f"{'  interpreter + all CLI imports':32}{t_import:8.2f}")
    print(f"{'  interpreter + methane imports':32}{t_import_light:8.2f}")
    ratio, ratio_in = min(cli) / f, total_in / f
    print(f"command / filter alone: {ratio:.2f}x (goal <= 3); in process {ratio_in:.2f}x")
    print(
        json.dumps(
            {
                "rows": args.rows,
                "cols": args.cols,
                "file_bytes": size,
                "filter_alone_s": round(f, 3),
                "command_s": round(min(cli), 3),
                "command_in_process_s": round(total_in, 3),
                "phases_s": {k: round(v, 3) for k, v in best_in.items()},
                "cli_import_s": round(t_import, 3),
                "methane_cli_import_s": round(t_import_light, 3),
                "command_vs_filter": round(min(cli) / f, 2),
                "in_process_vs_filter": round(total_in / f, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
