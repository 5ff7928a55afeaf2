"""The embedded block store: RocksDB through ``rocksdict`` in raw-bytes mode.

Values are the codec's bytes (never pickles: ``Options(raw_mode=True)``); RocksDB keeps
keys sorted bytewise, which with the big-endian key layout is numeric order, so a scan
is one seek plus a forward walk. ``put_many`` encodes on a small thread pool (zstd,
shuffle and crc32 release the GIL) while the caller's iterator produces the next blocks;
batches are written in input order, so the last of repeated keys still wins (do not
change a block's array until ``put_many`` returns). ``get_many`` decodes hits on the same
pool. A few blocks (at most ``_INLINE``), and small values (windowed blocks of small
scenes: less than ``_POOL_BYTES`` in all), are encoded and decoded on the calling thread:
their work is mostly Python that holds the GIL, so handing them to the pool costs more than
it saves (decoding the 170 small blocks of the bench's datacube: 30 ms through the pool,
9 ms here).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain, islice
from pathlib import Path

from rocksdict import AccessType, Options, Rdict, WriteBatch

from gravitas.storage.blocks.base import Block
from gravitas.storage.blocks.codec import (
    DEFAULT_CODEC,
    StoredWindow,
    decode_block,
    decode_window,
    encode_block,
)
from gravitas.storage.blocks.errors import BlockStoreError, BlockStoreLockedError

__all__ = ["RocksBlockStore"]

_BATCH = 256
_INLINE = 8
_POOL_BYTES = 2 << 20
_ENCODE_WORKERS = max(2, min(4, os.cpu_count() or 2))


class RocksBlockStore:
    """A :class:`~gravitas.storage.blocks.base.BlockStore` in one RocksDB directory."""

    def __init__(
        self, path: str | Path, codec: str = DEFAULT_CODEC, *, read_only: bool = False
    ) -> None:
        """``read_only`` opens without RocksDB's LOCK (a view as of the open), so a
        command can read a store that a running node holds."""
        self.path = Path(path).expanduser().resolve()
        self.url = f"rocksdb://{self.path}"
        self.codec = codec
        self._pool: ThreadPoolExecutor | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            opts = Options(raw_mode=True)
            opts.create_if_missing(not read_only)
            access = AccessType.read_only() if read_only else AccessType.read_write()
            self._db: Rdict | None = Rdict(str(self.path), options=opts, access_type=access)
        except Exception as exc:
            if "lock" in str(exc).lower():
                raise BlockStoreLockedError(
                    f"RocksDB block store {self.path} is open in another process; one process "
                    "per RocksDB dir is supported: give each worker its own --data dir, or run "
                    "N workers on GRAVITAS_BLOCK_STORE=s3://... with a pgstac catalog"
                ) from None
            raise BlockStoreError(f"cannot open RocksDB block store at {self.path}: {exc}") from exc

    @property
    def db(self) -> Rdict:
        if self._db is None:
            raise BlockStoreError(f"block store {self.url} is closed")
        return self._db

    def put(self, key: bytes, block: Block) -> None:
        self.db.put(bytes(key), encode_block(block, self.codec))

    def put_raw(self, key: bytes, value: bytes) -> None:
        self.db.put(bytes(key), bytes(value))

    def _encoder(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(_ENCODE_WORKERS, thread_name_prefix="rocks-encode")
        return self._pool

    def put_many(self, items: Iterable[tuple[bytes, Block]]) -> int:
        it = iter(items)
        head = list(islice(it, _INLINE + 1))
        if len(head) <= _INLINE:  # a few blocks: encode here, one write
            batch = WriteBatch(raw_mode=True)
            for key, block in head:
                batch.put(bytes(key), encode_block(block, self.codec))
            self.db.write(batch)
            return len(head)
        db, codec, pool = self.db, self.codec, self._encoder()
        pending: deque[tuple[bytes, Future[bytes]]] = deque()

        def flush(count: int) -> None:
            batch = WriteBatch(raw_mode=True)
            for _ in range(count):
                key, fut = pending.popleft()
                batch.put(key, fut.result())
            db.write(batch)

        n = 0
        try:
            for key, block in chain(head, it):
                pending.append((bytes(key), pool.submit(encode_block, block, codec)))
                n += 1
                if len(pending) >= 2 * _BATCH:  # keep one batch encoding while we write
                    flush(_BATCH)
            while pending:
                flush(min(_BATCH, len(pending)))
        finally:
            for _key, fut in pending:
                fut.cancel()
        return n

    def get_raw(self, key: bytes) -> bytes | None:
        value = self.db.get(bytes(key))
        return None if value is None else bytes(value)

    def copy_raw_many(self, pairs: Iterable[tuple[bytes, bytes]]) -> int:
        n = 0
        it = iter(pairs)
        while chunk := [(bytes(a), bytes(b)) for a, b in islice(it, _BATCH)]:
            values: list[bytes | None] = self.db.get([a for a, _b in chunk])  # type: ignore[arg-type, assignment]
            batch = WriteBatch(raw_mode=True)
            for (_a, b), v in zip(chunk, values, strict=True):
                if v is not None:
                    batch.put(b, bytes(v))
                    n += 1
            self.db.write(batch)
        return n

    def get(self, key: bytes) -> Block | None:
        value = self.get_raw(key)
        return None if value is None else decode_block(value, key)

    def get_many(self, keys: Iterable[bytes]) -> list[Block | None]:
        return [w.block() if w is not None else None for w in self.get_many_windows(keys)]

    def get_many_windows(self, keys: Iterable[bytes]) -> list[StoredWindow | None]:
        klist = [bytes(k) for k in keys]
        if not klist:
            return []
        values: list[bytes | None] = self.db.get(klist)  # type: ignore[arg-type, assignment]
        found = [(i, v) for i, v in enumerate(values) if v is not None]
        out: list[StoredWindow | None] = [None] * len(klist)
        # a miss costs no decode; a few or small hits are not worth the pool
        if len(found) <= _INLINE or sum(len(v) for _i, v in found) < _POOL_BYTES:
            for i, v in found:
                out[i] = decode_window(v, klist[i])
            return out
        decoded = self._encoder().map(lambda iv: decode_window(iv[1], klist[iv[0]]), found)
        for (i, _v), window in zip(found, decoded, strict=True):
            out[i] = window
        return out

    def scan(self, lo: bytes, hi: bytes) -> Iterator[tuple[bytes, Block]]:
        it = self.db.iter()
        it.seek(bytes(lo))
        while it.valid():
            key: bytes = it.key()  # type: ignore[assignment]
            if key > hi:
                break
            yield key, decode_block(it.value(), key)
            it.next()

    def scan_keys(self, lo: bytes, hi: bytes) -> Iterator[bytes]:
        for key in self.db.keys(from_key=bytes(lo)):
            assert isinstance(key, bytes)
            if key > hi:
                break
            yield key

    def delete(self, key: bytes) -> None:
        self.db.delete(bytes(key))

    def count(self, lo: bytes | None = None, hi: bytes | None = None) -> int:
        start = b"" if lo is None else lo
        if hi is None:
            return sum(1 for _ in self.db.keys(from_key=start))
        return sum(1 for _ in self.scan_keys(start, hi))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> RocksBlockStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
