"""``open_block_store(url)``: pick the backend from a URL."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from gravitas.schemas.errors import ConfigError
from gravitas.storage.blocks.base import BlockStore
from gravitas.storage.blocks.codec import DEFAULT_CODEC

__all__ = ["open_block_store"]


def open_block_store(
    url: str,
    access_key: str | None = None,
    secret_key: str | None = None,
    codec: str = DEFAULT_CODEC,
) -> BlockStore:
    """Open ``rocksdb:///abs/path`` (embedded) or ``s3://bucket/prefix?endpoint=host:port``.

    S3 credentials: the arguments, else ``GRAVITAS_S3_ACCESS_KEY`` /
    ``GRAVITAS_S3_SECRET_KEY``.
    """
    scheme = urlsplit(url).scheme
    if scheme == "rocksdb":
        from gravitas.storage.blocks.rocksdb import RocksBlockStore

        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ConfigError(f"expected rocksdb:///absolute/path, got {url!r}")
        return RocksBlockStore(unquote(parts.path), codec=codec)
    if scheme == "s3":
        from gravitas.storage.blocks.s3 import S3BlockStore

        return S3BlockStore(url, access_key=access_key, secret_key=secret_key, codec=codec)
    raise ConfigError(
        f"unknown block store URL {url!r}; use rocksdb:///path or "
        "s3://bucket/prefix?endpoint=host:port"
    )
