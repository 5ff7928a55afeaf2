"""One BlockStore suite, run on RocksDB and on the real SeaweedFS S3 server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gravitas.kernels.morton import morton_code
from gravitas.storage.blocks import (
    Block,
    BlockStore,
    CorruptBlockError,
    decode_block,
    encode_block,
    open_block_store,
)
from gravitas.storage.keys import decode_key, encode_key, key_range, scan_ranges
from gravitas.storage.s3server import SeaweedS3

T0 = 1_700_000_000  # 2023-11-14


def make_block(seed: int, dtype: str = "float32") -> Block:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:256, 0:256] / 256
    arr = 280 + 10 * np.sin(3 * xx + seed) * np.cos(2 * yy) + rng.normal(0, 0.1, (256, 256))
    return Block(arr.astype(dtype), nodata=-9999.0 if dtype.startswith("float") else 0)


@pytest.fixture(params=["rocksdb", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlockStore]:
    if request.param == "rocksdb":
        s = open_block_store(f"rocksdb://{tmp_path / 'blocks.db'}")
    else:
        server: SeaweedS3 = request.getfixturevalue("s3_server")
        url = f"s3://gravitas-blocks/t-{uuid.uuid4().hex[:8]}?endpoint={server.endpoint}"
        s = open_block_store(url, access_key=server.access_key, secret_key=server.secret_key)
    assert isinstance(s, BlockStore)
    yield s
    s.close()


def test_put_get_round_trip(store: BlockStore) -> None:
    key = encode_key("era5/t2m", 20, morton_code(5, 9), T0)
    b = make_block(1)
    store.put(key, b)
    got = store.get(key)
    assert got is not None and got.equals(b)
    assert got.dtype == np.float32 and got.nodata == -9999.0
    assert store.get(encode_key("era5/t2m", 20, morton_code(5, 10), T0)) is None


def test_put_many_get_many_preserve_order(store: BlockStore) -> None:
    items = [(encode_key("s2/b04", 17, m, T0), make_block(m, "uint16")) for m in range(40)]
    assert store.put_many(items) == 40
    missing = encode_key("s2/b04", 17, 999, T0)
    keys = [k for k, _ in items[::-1]] + [missing]
    got = store.get_many(keys)
    assert got[-1] is None
    for (_, want), have in zip(items[::-1], got[:-1], strict=True):
        assert have is not None and have.equals(want)
    assert store.count() == 40


def test_scan_is_in_key_order_and_respects_ranges(store: BlockStore) -> None:
    # two layers, two days, several blocks and times: written in shuffled order
    rng = np.random.default_rng(0)
    keys = [
        encode_key(layer, 18, morton_code(x, y), T0 + day * 86_400 + hour * 3600)
        for layer in ("a", "b")
        for day in (0, 1)
        for hour in (0, 5)
        for x in range(3)
        for y in range(3)
    ]
    order = rng.permutation(len(keys))
    block = make_block(3)
    store.put_many((keys[i], block) for i in order)
    lo, hi = key_range("a", 18, T0, T0 + 86_400 + 6 * 3600)
    scanned = [k for k, _ in store.scan(lo, hi)]
    expected = sorted(k for k in keys if decode_key(k).layer == decode_key(keys[0]).layer)
    assert scanned == expected
    assert list(store.scan_keys(lo, hi)) == expected
    assert store.count(lo, hi) == len(expected) == 36
    # bbox x0..1, y0..1 on day 1 only: contiguous runs from scan_ranges
    got: list[bytes] = []
    for rlo, rhi in scan_ranges("a", 18, T0 + 86_400, T0 + 86_400, (0, 0, 1, 1)):
        got += list(store.scan_keys(rlo, rhi))
    assert len(got) == 8  # 4 blocks x 2 hours
    assert got == sorted(got)
    assert {decode_key(k).bucket for k in got} == {T0 // 86_400 + 1}
    # inclusive bounds: a scan from a key to itself yields exactly that key
    assert [k for k, _ in store.scan(keys[7], keys[7])] == [keys[7]]


def test_writes_are_idempotent_bytes(store: BlockStore) -> None:
    key = encode_key("era5/t2m", 22, morton_code(1, 1), T0)
    b = make_block(7)
    store.put(key, b)
    first = store.get_raw(key)
    store.put(key, Block(b.array.copy(), nodata=-9999.0))
    assert store.get_raw(key) == first == encode_block(b)
    assert store.count() == 1


def test_delete(store: BlockStore) -> None:
    key = encode_key("x", 5, 3, T0)
    store.put(key, make_block(2))
    store.delete(key)
    assert store.get(key) is None
    assert store.count() == 0
    store.delete(key)  # deleting a missing key is fine


def test_corrupt_value_raises_clear_error(store: BlockStore) -> None:
    key = encode_key("x", 5, 4, T0)
    good = encode_block(make_block(4))
    store.put_raw(key, good[:-10] + b"\x00" * 10)
    with pytest.raises(CorruptBlockError, match=key.hex()):
        store.get(key)
    store.put_raw(key, b"not a block")
    with pytest.raises(CorruptBlockError, match="magic"):
        list(store.scan(key, key))


def test_codec_round_trips_dtypes_nodata_and_bands() -> None:
    for dtype, nodata in [("uint8", 255), ("int16", -32768), ("float64", float("nan"))]:
        arr = np.arange(3 * 16 * 16).reshape(3, 16, 16).astype(dtype)
        b = Block(arr, nodata=nodata)
        back = decode_block(encode_block(b))
        assert back.equals(b) and back.array.shape == (3, 16, 16)
    big_endian = Block(np.arange(16, dtype=">f4").reshape(4, 4))
    assert decode_block(encode_block(big_endian)).array.dtype == np.dtype("<f4")


@pytest.mark.parametrize(
    ("dtype", "nodata"),
    [("float32", float("nan")), ("int16", -9999), ("uint8", 255), ("float64", -1.0)],
)
def test_windowed_blocks_round_trip_bit_for_bit(dtype: str, nodata: float) -> None:
    rng = np.random.default_rng(7)
    for trial in range(60):
        arr = np.full((256, 256), nodata, dtype)
        r0, r1 = sorted(int(v) for v in rng.integers(0, 257, 2))
        c0, c1 = sorted(int(v) for v in rng.integers(0, 257, 2))
        arr[r0:r1, c0:c1] = rng.integers(0, 100, (r1 - r0, c1 - c0)).astype(dtype)
        if arr.dtype.kind == "f" and trial % 2:  # NaN holes inside the window
            arr[r0:r1, c0:c1][rng.random((r1 - r0, c1 - c0)) < 0.3] = np.nan
        block = Block(arr, nodata=nodata)
        data = encode_block(block)
        back = decode_block(data)
        bits = f"u{arr.itemsize}"
        assert np.array_equal(back.array.view(bits), arr.view(bits)), (r0, r1, c0, c1)
        assert encode_block(back) == data  # deterministic through a round trip
    empty = Block(np.full((256, 256), nodata, dtype), nodata=nodata)
    assert len(encode_block(empty)) <= 80  # an all-nodata block stores no pixels
    whole = Block(rng.integers(0, 100, (256, 256)).astype(dtype), nodata=nodata)
    corner = whole.array.copy()
    corner[100:, :] = nodata
    assert len(encode_block(Block(corner, nodata=nodata))) < len(encode_block(whole))


def test_windowed_block_keeps_nan_payload_bits() -> None:
    odd_nan = np.array([0x7FC00001], "<u4").view("<f4")[0]
    arr = np.full((256, 256), np.nan, np.float32)
    arr[:, :10] = odd_nan  # NaN, but not the nodata bit pattern: must survive as is
    back = decode_block(encode_block(Block(arr, nodata=float("nan"))))
    assert np.array_equal(back.array.view("<u4"), arr.view("<u4"))


def test_corrupt_window_is_rejected() -> None:
    arr = np.full((256, 256), -1, np.int16)
    arr[5:9, 5:9] = 3
    data = bytearray(encode_block(Block(arr, nodata=-1)))
    at = data.index(b"\x01\xff\xff") + 3  # nodata flag + value, then the window
    data[at : at + 4] = (300).to_bytes(4, "little")  # row0 past the block
    with pytest.raises(CorruptBlockError):
        decode_block(bytes(data))


def test_copy_raw_many_copies_bytes_and_skips_missing(store: BlockStore) -> None:
    src = [encode_key("staged:a:t", 20, m, T0) for m in range(3)]
    dst = [encode_key("t", 20, m, T0) for m in range(3)]
    store.put_many([(src[0], make_block(1)), (src[2], make_block(3))])
    assert store.copy_raw_many(zip(src, dst, strict=True)) == 2
    assert store.get_raw(dst[0]) == store.get_raw(src[0]) == encode_block(make_block(1))
    assert store.get_raw(dst[1]) is None
    assert store.get_raw(dst[2]) == encode_block(make_block(3))
    assert store.copy_raw_many([]) == 0
