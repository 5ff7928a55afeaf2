"""Errors of the block store: keys, values and backends."""

from __future__ import annotations

from gravitas.schemas.errors import CorruptFileError, InputError, StorageError


class BlockKeyError(InputError):
    """A block key or one of its fields (layer, level, morton, time) is malformed."""


class BlockEncodeError(InputError):
    """An array that the block codec cannot store (dtype, shape, nodata)."""


class CorruptBlockError(CorruptFileError):
    """A stored block value whose header, checksum or payload does not decode."""


class BlockStoreError(StorageError):
    """A block store backend failed or was configured wrongly."""


class BlockStoreLockedError(BlockStoreError):
    """A RocksDB block store directory is already open in another process."""
