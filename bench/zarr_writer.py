"""Streaming Zarr writer: gravitas' ``ZarrStream`` vs ``xarray.Dataset.to_zarr`` region writes.

The datacube's patches arrive strip by strip (``agents/datacube/tiled.py``). Both writers
get the same slabs of patches (``data`` float32 and ``gap_filled`` uint8, one patch per
chunk, Zstd level 1, Zarr v2, consolidated) and must produce arrays that read back equal:

- ``ZarrStream``: ``append`` per slab, ``commit`` with the small variables at the end;
- xarray: ``to_zarr(compute=False)`` of a lazy template first (metadata and the small
  variables), then ``to_zarr(region={"patch": slice})`` per slab.

Reported: wall time (best of ``--repeat``) and tracemalloc peak (of one run) of each,
and the ratio; last line one JSON object.

    .venv/bin/python bench/zarr_writer.py [--patches 512] [--slab 64] [--times 40]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import dask.array as da
import numcodecs
import numpy as np
import xarray as xr

from gravitas.agents.datacube.zarr_v2 import ZarrStream


def slabs(n: int, slab: int, shape: tuple[int, ...], seed: int = 1) -> list[tuple[int, int]]:
    return [(i, min(i + slab, n)) for i in range(0, n, slab)]


def make(i0: int, i1: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A slab of realistic patches: smooth reflectance-like values, some NaN, some filled."""
    rng = np.random.default_rng(i0)
    base = rng.normal(1000, 200, (i1 - i0, *shape[:2], 1, 1)).astype(np.float32)
    data = base + rng.normal(0, 30, (i1 - i0, *shape)).astype(np.float32)
    filled = rng.random((i1 - i0, *shape)) < 0.05
    data[rng.random(data.shape) < 0.01] = np.nan
    return data, filled.astype(np.uint8)


def small(n: int) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    return {"split": (("patch",), (np.arange(n) % 3).astype(np.int8)),
            "valid_fraction": (("patch",), np.linspace(0.3, 1, n).astype(np.float32))}  # fmt: skip


def ours(root: Path, n: int, slab: int, shape: tuple[int, ...]) -> None:
    z = ZarrStream(root)
    chunk = (1, *shape)
    for i0, i1 in slabs(n, slab, shape):
        data, filled = make(i0, i1, shape)
        z.append("data", data, chunk)
        z.append("gap_filled", filled, chunk)
    dims = ("patch", "time", "band", "y", "x")
    ds = xr.Dataset({"data": (dims, da.zeros((n, *shape), dtype=np.float32, chunks=chunk)),
                     "gap_filled": (dims, da.zeros((n, *shape), dtype=np.uint8, chunks=chunk)),
                     **small(n)})  # fmt: skip
    ds["data"].encoding["_FillValue"] = np.float32(np.nan)
    z.commit(ds, {"data": chunk, "gap_filled": chunk})


def xarray_regions(root: Path, n: int, slab: int, shape: tuple[int, ...]) -> None:
    chunk = (1, *shape)
    dims = ("patch", "time", "band", "y", "x")
    comp = numcodecs.Zstd(level=1)  # zarr v2 format: the compressor of our writer
    template = xr.Dataset({
        "data": (dims, da.zeros((n, *shape), dtype=np.float32, chunks=chunk)),
        "gap_filled": (dims, da.zeros((n, *shape), dtype=np.uint8, chunks=chunk)),
        **small(n),
    })  # fmt: skip
    enc = {"data": {"chunks": chunk, "compressors": [comp], "_FillValue": np.float32(np.nan)},
           "gap_filled": {"chunks": chunk, "compressors": [comp]}}  # fmt: skip
    template.to_zarr(root, mode="w", compute=False, zarr_format=2, consolidated=True,
                     encoding=enc)  # fmt: skip
    for i0, i1 in slabs(n, slab, shape):
        data, filled = make(i0, i1, shape)
        part = xr.Dataset({"data": (dims, data), "gap_filled": (dims, filled)})
        part.to_zarr(root, region={"patch": slice(i0, i1)}, zarr_format=2)
    xr.Dataset(small(n)).to_zarr(root, mode="a", zarr_format=2, consolidated=True)


def measure(fn: Callable[..., None], repeat: int, *args: object) -> tuple[float, float, Path]:
    best = float("inf")
    keep = Path(tempfile.mkdtemp(prefix="zarr-bench-"))
    for k in range(repeat):
        root = keep / f"r{k}.zarr"
        t0 = time.perf_counter()
        fn(root, *args)
        best = min(best, time.perf_counter() - t0)
    tracemalloc.start()
    fn(keep / "traced.zarr", *args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return best, peak / 1024**2, keep / "r0.zarr"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patches", type=int, default=512)
    ap.add_argument("--slab", type=int, default=64, help="patches per strip")
    ap.add_argument("--times", type=int, default=40)
    ap.add_argument("--bands", type=int, default=4)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    shape = (a.times, a.bands, a.patch, a.patch)
    ours_s, ours_mb, ours_root = measure(ours, a.repeat, a.patches, a.slab, shape)
    xr_s, xr_mb, xr_root = measure(xarray_regions, a.repeat, a.patches, a.slab, shape)
    g, x = xr.open_zarr(ours_root), xr.open_zarr(xr_root)
    equal = bool(g["data"].equals(x["data"]) and g["gap_filled"].equals(x["gap_filled"]))
    slab_mb = a.slab * int(np.prod(shape)) * 5 / 1024**2
    cube_mb = a.patches * int(np.prod(shape)) * 5 / 1024**2
    print(f"ZarrStream {ours_s:.2f} s, peak {ours_mb:.0f} MB; xarray region writes {xr_s:.2f} s, "
          f"peak {xr_mb:.0f} MB; xarray/ours time {xr_s / ours_s:.2f}x; one slab {slab_mb:.0f} "
          f"MB, cube {cube_mb:.0f} MB; read back equal: {equal}")  # fmt: skip
    print(json.dumps({
        "patches": a.patches, "slab": a.slab, "patch_shape": list(shape),
        "ours_s": round(ours_s, 3), "xarray_region_s": round(xr_s, 3),
        "xarray_vs_ours": round(xr_s / ours_s, 2), "ours_peak_mb": round(ours_mb, 1),
        "xarray_peak_mb": round(xr_mb, 1), "slab_mb": round(slab_mb, 1),
        "cube_mb": round(cube_mb, 1), "equal": equal,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
