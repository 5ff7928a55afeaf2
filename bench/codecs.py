"""Measure block value codecs: compression ratio and MB/s on realistic 256 x 256 blocks.

Data: smooth float32 fields with noise (temperature-like), the same with a nodata
region, a GRIB-like quantised field, and real Sentinel-2 L1C blocks (uint16 and
float32 reflectance) when ``gravitas.storage.sampledata.fetch("s2_l1c")`` is available.
Prints a table and, last, one JSON line. Run: ``/work/venv/bin/python bench/codecs.py``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import numpy as np

from gravitas.storage.blocks.base import Block
from gravitas.storage.blocks.codec import AUTO, CODECS, decode_block, encode_block

N_SYNTH = 24


def synthetic(rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    """Smooth fields + noise, a nodata variant and a GRIB-like quantised variant."""
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32) / 256
    smooth, holes, quant = [], [], []
    for _ in range(N_SYNTH):
        a, b, c = rng.uniform(0.5, 4, 3)
        f = 285 + 12 * np.sin(a * np.pi * xx + c) * np.cos(b * np.pi * yy) + 3 * xx
        f = (f + rng.normal(0, 0.05, f.shape)).astype(np.float32)
        smooth.append(f)
        g = f.copy()
        g[:, : rng.integers(40, 160)] = np.nan
        holes.append(g)
        quant.append((np.round(f * 64) / 64).astype(np.float32))
    return {"smooth+noise f4": smooth, "nodata(NaN) f4": holes, "quantised f4": quant}


def real_s2() -> dict[str, list[np.ndarray]]:
    """256 x 256 blocks of the four 10 m bands of a real Sentinel-2 L1C scene."""
    try:
        import rasterio

        from gravitas.storage.sampledata import fetch

        root = fetch("s2_l1c")
    except Exception as exc:  # sample data not available on this machine
        print(f"(no real raster: {exc!r})", file=sys.stderr)
        return {}
    blocks = []
    for band in ("B02", "B03", "B04", "B08"):  # 10 m bands, 768 x 1536 each
        with rasterio.open(next(root.glob(f"*_{band}.jp2"))) as src:
            arr = src.read(1)
        h, w = (arr.shape[0] // 256) * 256, (arr.shape[1] // 256) * 256
        blocks += [
            arr[i : i + 256, j : j + 256] for i in range(0, h, 256) for j in range(0, w, 256)
        ]
    refl = [(b.astype(np.float32) / 10000).astype(np.float32) for b in blocks]
    return {"S2 10m u2": blocks, "S2 10m refl f4": refl}


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure(dname: str, cname: str, blocks: list[Block]) -> dict[str, object]:
    """Ratio and encode/decode MB/s (of raw array bytes) of one codec on one dataset."""
    raw_mb = sum(b.array.nbytes for b in blocks) / 1e6
    encoded = [encode_block(b, codec=cname) for b in blocks]
    enc_s = timed(lambda: [encode_block(b, codec=cname) for b in blocks])
    dec_s = timed(lambda: [decode_block(e) for e in encoded])
    ratio = raw_mb * 1e6 / sum(len(e) for e in encoded)
    return {"data": dname, "codec": cname, "ratio": round(ratio, 3),
            "enc_MBps": round(raw_mb / enc_s, 1), "dec_MBps": round(raw_mb / dec_s, 1)}  # fmt: skip


def main() -> None:
    data = synthetic(np.random.default_rng(42))
    data.update(real_s2())
    results: list[dict[str, object]] = []
    print(f"{'data':18s} {'codec':14s} {'ratio':>6s} {'enc MB/s':>9s} {'dec MB/s':>9s}")
    for dname, arrays in data.items():
        blocks = [Block(a, nodata=None) for a in arrays]
        for cname in [*CODECS, AUTO]:
            results.append(measure(dname, cname, blocks))
            r = results[-1]
            print(f"{dname:18s} {cname:14s} {r['ratio']:6.2f} {r['enc_MBps']:9.0f} "
                  f"{r['dec_MBps']:9.0f}")  # fmt: skip
    counts = {k: len(v) for k, v in data.items()}
    print(json.dumps({"bench": "block_codecs", "blocks": counts, "results": results}))


if __name__ == "__main__":
    main()
