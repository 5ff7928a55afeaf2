"""Mosaics built from stored data windows equal mosaics of the whole decoded blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gravitas.kernels.morton import morton_encode
from gravitas.storage.blocks import Block, open_block_store
from gravitas.storage.keys import encode_key
from gravitas.storage.pixels import LayerRegistry
from gravitas.storage.pixels.read import _mosaics

LEVEL, T0 = 20, 1_500_000_000


def _whole_block_mosaic(store, name, times, px, fill, dtype):  # type: ignore[no-untyped-def]
    """The reference: every block decoded whole and copied pixel by pixel."""
    x0, y0, x1, y1 = px
    out = np.full((len(times), y1 - y0 + 1, x1 - x0 + 1), fill, dtype)
    for t, ts in enumerate(times):
        for y in range(y0, y1 + 1):
            for bx in range(x0 >> 8, (x1 >> 8) + 1):
                blk = store.get(encode_key(name, LEVEL, int(morton_encode(bx, y >> 8)), ts))
                if blk is None:
                    continue
                row = blk.array[255 - (y & 255)]
                lo, hi = max(x0, bx * 256), min(x1, bx * 256 + 255)
                out[t, y1 - y, lo - x0 : hi - x0 + 1] = row[lo - bx * 256 : hi - bx * 256 + 1]
    return out


@pytest.mark.parametrize(
    ("dtype", "nodata", "categorical"),
    [("float32", float("nan"), False), ("uint8", 255, True), ("int16", -9999, False)],
)
def test_window_mosaic_equals_whole_blocks(
    tmp_path: Path, dtype: str, nodata: float, categorical: bool
) -> None:
    rng = np.random.default_rng(11)
    store = open_block_store(f"rocksdb://{tmp_path / 'blocks'}")
    registry = LayerRegistry(tmp_path / "layers.sqlite")
    name = f"w_{dtype}"
    times = [T0 + 86400 * k for k in range(4)]
    for ts in times:
        for bx in range(100, 103):
            for by in range(200, 202):
                arr = np.full((256, 256), nodata, dtype)
                r0, r1 = sorted(int(v) for v in rng.integers(0, 257, 2))
                c0, c1 = sorted(int(v) for v in rng.integers(0, 257, 2))
                arr[r0:r1, c0:c1] = rng.integers(0, 200, (r1 - r0, c1 - c0)).astype(dtype)
                store.put(encode_key(name, LEVEL, int(morton_encode(bx, by)), ts),
                          Block(arr, nodata=nodata))  # fmt: skip
        registry.record(name, dtype=dtype, nodata=nodata, native_level=LEVEL,
                        categorical=categorical, timestamp=ts, scene_id="s", blocks=6)  # fmt: skip
    info = registry.get(name)
    for px in [(100 * 256, 200 * 256, 103 * 256 - 1, 202 * 256 - 1),  # every block whole
               (100 * 256 + 37, 200 * 256 + 101, 102 * 256 + 5, 201 * 256 + 250),
               (101 * 256 + 3, 201 * 256 + 7, 101 * 256 + 90, 201 * 256 + 60)]:  # fmt: skip
        got = _mosaics(store, info, LEVEL, times, px)
        # the mosaic's fill: NaN float32 for continuous layers, nodata for categorical ones
        fill = nodata if categorical else float("nan")
        want = _whole_block_mosaic(store, name, times, px, fill, got.dtype)
        assert got.dtype == want.dtype
        assert np.array_equal(got, want, equal_nan=got.dtype.kind == "f"), px
    store.close()
