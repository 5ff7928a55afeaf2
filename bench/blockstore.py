"""Raw write (and read) throughput of each block store backend for 256 x 256 float32 blocks.

Encodes with the default codec and writes with ``put_many``; reports pixels/s and MB/s
of raw array bytes (what ingest will be compared against). RocksDB in a temp dir; S3 on
a real SeaweedFS ``weed mini`` started (and stopped) here. Last line is one JSON object.
Run: ``/work/venv/bin/python bench/blockstore.py [n_blocks]``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gravitas.kernels.morton import morton_code
from gravitas.storage.blocks import Block, BlockStore, encode_block, open_block_store
from gravitas.storage.keys import encode_key
from gravitas.storage.s3server import SeaweedS3

T0 = 1_700_000_000


def make_blocks(n: int) -> list[tuple[bytes, Block]]:
    """``n`` realistic float32 blocks (smooth field + noise) under level-20 keys."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32) / 256
    base = 285 + 12 * np.sin(3 * np.pi * xx) * np.cos(2 * np.pi * yy)
    items = []
    side = int(np.ceil(np.sqrt(n)))
    for i in range(n):
        arr = (base + 2 * (i % 7) + rng.normal(0, 0.05, base.shape)).astype(np.float32)
        key = encode_key("bench/t2m", 20, morton_code(i % side, i // side), T0)
        items.append((key, Block(arr, nodata=-9999.0)))
    return items


def measure(name: str, store: BlockStore, items: list[tuple[bytes, Block]]) -> dict[str, object]:
    px = len(items) * 256 * 256
    mb = len(items) * 256 * 256 * 4 / 1e6
    t = time.perf_counter()
    store.put_many(items)
    w = time.perf_counter() - t
    keys = [k for k, _ in items]
    t = time.perf_counter()
    got = store.get_many(keys)
    r = time.perf_counter() - t
    assert all(g is not None for g in got)
    row = {
        "backend": name,
        "blocks": len(items),
        "write_s": round(w, 3),
        "write_Mpx_s": round(px / w / 1e6, 2),
        "write_MB_s": round(mb / w, 1),
        "read_Mpx_s": round(px / r / 1e6, 2),
        "read_MB_s": round(mb / r, 1),
    }
    print(f"{name:8s} {len(items):6d} blocks  write {row['write_Mpx_s']:7.2f} Mpx/s "
          f"{row['write_MB_s']:7.1f} MB/s   read {row['read_Mpx_s']:7.2f} Mpx/s "
          f"{row['read_MB_s']:7.1f} MB/s")  # fmt: skip
    return row


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    items = make_blocks(n)
    t = time.perf_counter()
    stored = sum(len(encode_block(b)) for _, b in items)
    enc_s = time.perf_counter() - t
    raw = n * 256 * 256 * 4
    print(f"codec: ratio {raw / stored:.2f}, encode {raw / enc_s / 1e6:.0f} MB/s (single thread)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="gravitas-bench-") as tmp:
        store = open_block_store(f"rocksdb://{Path(tmp) / 'blocks.db'}")
        rows.append(measure("rocksdb", store, items))
        store.close()
    with SeaweedS3() as server:
        url = f"s3://gravitas-bench/blocks?endpoint={server.endpoint}"
        store = open_block_store(url, access_key=server.access_key, secret_key=server.secret_key)
        rows.append(measure("s3", store, items))
        store.close()
    print(json.dumps({"bench": "blockstore_raw_write", "block": "256x256 float32",
                      "codec_ratio": round(raw / stored, 3), "results": rows}))  # fmt: skip


if __name__ == "__main__":
    main()
