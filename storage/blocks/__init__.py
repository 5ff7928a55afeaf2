"""The block store: 256 x 256 pixel blocks under sorted byte keys.

``open_block_store("rocksdb:///path")`` (embedded) or
``open_block_store("s3://bucket/prefix?endpoint=host:port")`` (shared) returns a
:class:`BlockStore`; values are :class:`Block` s encoded by :func:`encode_block`.
"""

from gravitas.storage.blocks.base import Block, BlockStore
from gravitas.storage.blocks.codec import decode_block, encode_block
from gravitas.storage.blocks.errors import (
    BlockEncodeError,
    BlockKeyError,
    BlockStoreError,
    CorruptBlockError,
)
from gravitas.storage.blocks.factory import open_block_store

__all__ = [
    "Block",
    "BlockEncodeError",
    "BlockKeyError",
    "BlockStore",
    "BlockStoreError",
    "CorruptBlockError",
    "decode_block",
    "encode_block",
    "open_block_store",
]
