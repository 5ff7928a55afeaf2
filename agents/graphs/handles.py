"""A block-store handle that pickles: dask.distributed workers reopen the store by URL.

The S3 store holds a connection pool and a thread pool, neither of which can travel to
another process. :class:`StoreHandle` travels as ``(url, keys, codec)`` and opens the
store once per worker process on first use; every method call is delegated to it.
RocksDB stores are single-process (a file lock) and cannot be shared this way.
"""

from __future__ import annotations

import threading
from typing import Any

from gravitas.storage.blocks import BlockStore, open_block_store

_OPEN: dict[tuple[str, str | None, str | None], BlockStore] = {}
_LOCK = threading.Lock()


def _opened(url: str, access_key: str | None, secret_key: str | None) -> BlockStore:
    key = (url, access_key, secret_key)
    with _LOCK:
        if key not in _OPEN:
            _OPEN[key] = open_block_store(url, access_key, secret_key)
        return _OPEN[key]


class StoreHandle:
    """A picklable stand-in for an S3 block store (opened lazily in each process)."""

    def __init__(self, url: str, access_key: str | None, secret_key: str | None) -> None:
        self.url = url
        self._keys = (access_key, secret_key)

    def __reduce__(self) -> tuple[Any, ...]:
        return (StoreHandle, (self.url, *self._keys))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("url", "_keys"):
            raise AttributeError(name)
        return getattr(_opened(self.url, *self._keys), name)
