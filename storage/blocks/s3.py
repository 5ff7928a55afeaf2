"""The shared block store: one S3 object per block key, via the minio client.

Object name = ``prefix/`` + the key's lowercase hex, so the server's lexicographic
listing order equals key order and a scan is a ``list_objects(start_after=...)``.
Gets and puts of many blocks run concurrently on a thread pool.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

from minio.error import S3Error

from gravitas.storage.blocks.base import Block
from gravitas.storage.blocks.codec import (
    DEFAULT_CODEC,
    StoredWindow,
    decode_block,
    decode_window,
    encode_block,
)
from gravitas.storage.blocks.errors import BlockStoreError
from gravitas.storage.s3client import S3Url, ensure_bucket, make_client, parse_s3_url

__all__ = ["S3BlockStore"]

_CHUNK = 64


class S3BlockStore:
    """A :class:`~gravitas.storage.blocks.base.BlockStore` over an S3 bucket and prefix."""

    def __init__(
        self,
        url: str,
        access_key: str | None = None,
        secret_key: str | None = None,
        codec: str = DEFAULT_CODEC,
        workers: int = 16,
    ) -> None:
        self.loc: S3Url = parse_s3_url(url)
        self.url = self.loc.url()
        self.codec = codec
        self._client = make_client(self.loc, access_key, secret_key, pool_size=workers)
        ensure_bucket(self._client, self.loc.bucket)
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="s3blocks"
        )
        self._base = self.loc.object_name("")

    def _name(self, key: bytes) -> str:
        return self._base + bytes(key).hex()

    def _key(self, name: str) -> bytes:
        return bytes.fromhex(name[len(self._base) :])

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            raise BlockStoreError(f"block store {self.url} is closed")
        return self._pool

    def put_raw(self, key: bytes, value: bytes) -> None:
        try:
            self._client.put_object(
                self.loc.bucket, self._name(key), io.BytesIO(value), len(value),
                content_type="application/octet-stream",
            )  # fmt: skip
        except S3Error as exc:
            raise BlockStoreError(
                f"S3 put of block {key.hex()} in {self.url} failed: {exc}"
            ) from exc

    def put(self, key: bytes, block: Block) -> None:
        self.put_raw(key, encode_block(block, self.codec))

    def put_many(self, items: Iterable[tuple[bytes, Block]]) -> int:
        def one(item: tuple[bytes, Block]) -> None:
            self.put(*item)

        n = 0
        it = iter(items)
        while chunk := list(islice(it, _CHUNK)):
            list(self.pool.map(one, chunk))
            n += len(chunk)
        return n

    def get_raw(self, key: bytes) -> bytes | None:
        try:
            resp = self._client.get_object(self.loc.bucket, self._name(key))
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                return None
            raise BlockStoreError(
                f"S3 get of block {key.hex()} in {self.url} failed: {exc}"
            ) from exc
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def copy_raw_many(self, pairs: Iterable[tuple[bytes, bytes]]) -> int:
        def one(pair: tuple[bytes, bytes]) -> int:
            value = self.get_raw(pair[0])
            if value is None:
                return 0
            self.put_raw(pair[1], value)
            return 1

        n = 0
        it = iter(pairs)
        while chunk := list(islice(it, _CHUNK)):
            n += sum(self.pool.map(one, chunk))
        return n

    def get(self, key: bytes) -> Block | None:
        value = self.get_raw(key)
        return None if value is None else decode_block(value, key)

    def get_many(self, keys: Iterable[bytes]) -> list[Block | None]:
        return [w.block() if w is not None else None for w in self.get_many_windows(keys)]

    def get_many_windows(self, keys: Iterable[bytes]) -> list[StoredWindow | None]:
        def one(key: bytes) -> StoredWindow | None:
            value = self.get_raw(key)
            return None if value is None else decode_window(value, key)

        return list(self.pool.map(one, [bytes(k) for k in keys]))

    def scan_keys(self, lo: bytes, hi: bytes) -> Iterator[bytes]:
        lo_name, hi_name = self._name(lo), self._name(hi)
        # start_after is exclusive: list from one hex digit before lo, then filter
        start = lo_name[:-1] if lo else None
        objects = self._client.list_objects(
            self.loc.bucket, prefix=self._base or None, recursive=True, start_after=start
        )
        try:
            for obj in objects:
                name = obj.object_name
                if name is None or name < lo_name:
                    continue
                if name > hi_name:
                    break
                yield self._key(name)
        except S3Error as exc:
            raise BlockStoreError(f"S3 listing of {self.url} failed: {exc}") from exc

    def scan(self, lo: bytes, hi: bytes) -> Iterator[tuple[bytes, Block]]:
        keys = self.scan_keys(lo, hi)
        while chunk := list(islice(keys, _CHUNK)):
            for key, value in zip(chunk, self.pool.map(self.get_raw, chunk), strict=True):
                if value is not None:  # deleted between listing and reading
                    yield key, decode_block(value, key)

    def delete(self, key: bytes) -> None:
        try:
            self._client.remove_object(self.loc.bucket, self._name(key))
        except S3Error as exc:
            raise BlockStoreError(
                f"S3 delete of block {key.hex()} in {self.url} failed: {exc}"
            ) from exc

    def count(self, lo: bytes | None = None, hi: bytes | None = None) -> int:
        return sum(1 for _ in self.scan_keys(lo or b"", hi if hi is not None else b"\xff" * 64))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> S3BlockStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
