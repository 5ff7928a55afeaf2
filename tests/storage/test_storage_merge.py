"""Merging staged scene blocks: a block new to the layer is copied as stored bytes and
equals what decode + merge + encode writes; overlaps keep the larger value; a replay
after the drop changes nothing. On RocksDB and the real SeaweedFS S3 server."""

from __future__ import annotations

import numpy as np
import pytest

from gravitas.storage.blocks import Block, BlockStore, encode_block
from gravitas.storage.keys import encode_key
from gravitas.storage.pixels.merge import merge_blocks, merge_staged, staged_key

T0 = 1_700_000_000


@pytest.fixture
def store(block_store: BlockStore) -> BlockStore:
    """An empty block store on each backend (``tests.fixtures.s3.block_store``)."""
    return block_store


def _scene(seed: int, hole: slice) -> list[Block]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(3):
        a = (280 + rng.normal(0, 5, (256, 256))).astype(np.float32)
        a[hole] = np.nan  # a scene edge: part of the block holds no data
        out.append(Block(a, nodata=float("nan")))
    return out


def test_merge_copies_new_blocks_and_merges_overlaps(store: BlockStore) -> None:
    codes = [5, 6, 7]
    a, b = _scene(1, np.s_[:, 200:]), _scene(2, np.s_[:, :100])
    store.put_many((staged_key("A", "t", 20, m, T0), blk) for m, blk in zip(codes, a, strict=True))
    assert merge_staged(store, "t", "A", 20, T0, codes) == 3
    keys = [encode_key("t", 20, m, T0) for m in codes]
    # the copy is exactly what the decode + merge + encode path writes
    assert [store.get_raw(k) for k in keys] == [encode_block(merge_blocks(x, None)) for x in a]
    assert all(store.get_raw(staged_key("A", "t", 20, m, T0)) is None for m in codes)
    # scene B overlaps two of the blocks: the larger value where both hold data
    store.put_many(
        (staged_key("B", "t", 20, m, T0), blk) for m, blk in zip(codes[:2], b[:2], strict=True)
    )
    assert merge_staged(store, "t", "B", 20, T0, codes[:2]) == 2
    for k, x, y in zip(keys[:2], a[:2], b[:2], strict=True):
        got = store.get(k)
        assert got is not None
        assert np.array_equal(got.array, np.fmax(x.array, y.array), equal_nan=True)
    before = [store.get_raw(k) for k in keys]
    # a replay after the drop writes nothing and changes no byte
    assert merge_staged(store, "t", "A", 20, T0, codes) == 0
    assert merge_staged(store, "t", "B", 20, T0, codes[:2]) == 0
    assert [store.get_raw(k) for k in keys] == before
