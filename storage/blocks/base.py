"""The block store contract: a :class:`Block` value and the :class:`BlockStore` protocol.

Keys are the fixed-width byte strings of :mod:`gravitas.storage.keys`; backends store
the deterministic bytes of :func:`gravitas.storage.blocks.codec.encode_block`, so
writing the same block twice stores identical bytes under the same key (idempotent).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from gravitas.storage.blocks.errors import BlockEncodeError

if TYPE_CHECKING:
    from gravitas.storage.blocks.codec import StoredWindow

__all__ = ["Block", "BlockStore", "same_nodata"]


@dataclass(frozen=True, eq=False)
class Block:
    """One block of pixels: a 2-D (rows, cols) or 3-D (bands, rows, cols) array.

    Rows run north to south (row 0 = north edge), see :mod:`gravitas.kernels.grid`.
    """

    array: np.ndarray
    """The pixel values."""
    nodata: float | int | None = None
    """The value marking missing pixels (NaN allowed for floats), or None."""

    def __post_init__(self) -> None:
        if not isinstance(self.array, np.ndarray):
            raise BlockEncodeError(f"Block.array must be a numpy array, got {type(self.array)}")
        if self.array.ndim not in (2, 3):
            raise BlockEncodeError(
                f"Block.array must be 2-D (rows, cols) or 3-D (bands, rows, cols), "
                f"got shape {self.array.shape}"
            )

    @property
    def dtype(self) -> np.dtype:
        """dtype of the array."""
        return self.array.dtype

    def equals(self, other: Block) -> bool:
        """Same dtype, shape, values (NaN == NaN) and nodata."""
        if self.dtype != other.dtype or self.array.shape != other.array.shape:
            return False
        if not same_nodata(self.nodata, other.nodata):
            return False
        return bool(np.array_equal(self.array, other.array, equal_nan=self.dtype.kind in "fc"))


def same_nodata(a: float | int | None, b: float | int | None) -> bool:
    """Equal nodata values, NaN equal to NaN (None only equals None)."""
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@runtime_checkable
class BlockStore(Protocol):
    """A sorted key-value store of blocks (RocksDB, S3, ...).

    ``scan(lo, hi)`` yields every ``lo <= key <= hi`` (bytes order, both inclusive) in
    ascending key order. ``get`` returns None for a missing key. Corrupt values raise
    :class:`~gravitas.storage.blocks.errors.CorruptBlockError` naming the key.
    """

    url: str
    """Where the store lives (``rocksdb:///path`` or ``s3://bucket/prefix?...``)."""

    def put(self, key: bytes, block: Block) -> None:
        """Store one block (overwrites; same block -> same bytes)."""
        ...

    def put_many(self, items: Iterable[tuple[bytes, Block]]) -> int:
        """Store many blocks (batched / concurrent); returns how many."""
        ...

    def get(self, key: bytes) -> Block | None:
        """The block at ``key`` or None."""
        ...

    def get_many(self, keys: Iterable[bytes]) -> list[Block | None]:
        """Blocks for ``keys`` in the same order (None where missing)."""
        ...

    def get_many_windows(self, keys: Iterable[bytes]) -> list[StoredWindow | None]:
        """Like :meth:`get_many`, but each value decoded only up to its data window (for
        readers that copy blocks into a mosaic and can skip the nodata around it)."""
        ...

    def scan(self, lo: bytes, hi: bytes) -> Iterator[tuple[bytes, Block]]:
        """``(key, block)`` for every key in ``[lo, hi]``, ascending."""
        ...

    def scan_keys(self, lo: bytes, hi: bytes) -> Iterator[bytes]:
        """Keys in ``[lo, hi]``, ascending, without reading values."""
        ...

    def put_raw(self, key: bytes, value: bytes) -> None:
        """Store already encoded bytes (copying between stores, tests)."""
        ...

    def get_raw(self, key: bytes) -> bytes | None:
        """The stored bytes at ``key`` or None."""
        ...

    def copy_raw_many(self, pairs: Iterable[tuple[bytes, bytes]]) -> int:
        """Copy the stored bytes of each ``(source, destination)`` key pair, without
        decoding or encoding; missing sources are skipped. Returns how many were copied."""
        ...

    def delete(self, key: bytes) -> None:
        """Remove ``key`` (no error if it is missing)."""
        ...

    def count(self, lo: bytes | None = None, hi: bytes | None = None) -> int:
        """Number of keys in ``[lo, hi]`` (all keys when both are None)."""
        ...

    def close(self) -> None:
        """Release files, connections and threads."""
        ...
