"""Block keys: ``layer | level | time bucket | morton | timestamp`` as big-endian bytes.

| field       | bytes | encoding                                                      |
|-------------|-------|---------------------------------------------------------------|
| layer       | 8     | first 8 bytes of BLAKE2b(layer name): same id on every node   |
| level       | 1     | 1..29                                                         |
| time bucket | 4     | UTC day index (``ts // 86400``) + 2**31, so days before 1970 sort first |
| morton      | 8     | Morton code of (block_x, block_y)                             |
| timestamp   | 8     | epoch seconds + 2**63 (sign bit flipped), so negative times sort first |

Every field is fixed width and unsigned big-endian, so byte order equals numeric order:
one layer x level x day is one contiguous run sorted by Morton code, and a bbox becomes
a few contiguous Morton ranges (:func:`morton_ranges`) per day. The layer id is a hash
rather than a registry entry so that keys need no shared state across the federation;
64 bits make a collision among even a million layers about 3e-8 likely.
"""

from __future__ import annotations

import functools
import hashlib
import re
import struct
from datetime import UTC, datetime
from typing import NamedTuple

from gravitas.kernels.morton import morton_ranges
from gravitas.schemas.grid import check_level
from gravitas.storage.blocks.errors import BlockKeyError

__all__ = [
    "BUCKET_SECONDS",
    "KEY_SIZE",
    "BlockKey",
    "decode_key",
    "encode_key",
    "key_range",
    "key_timestamp",
    "layer_id",
    "morton_ranges",
    "scan_ranges",
    "time_bucket",
    "to_epoch",
]

BUCKET_SECONDS = 86_400
"""Width of a time bucket: one UTC day."""
_FMT = struct.Struct(">QBIQQ")
KEY_SIZE = _FMT.size
"""Length of every block key in bytes (29)."""
_BUCKET_OFFSET = 1 << 31
_TS_FLIP = 1 << 63
_LAYER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")


class BlockKey(NamedTuple):
    """The decoded fields of a block key."""

    layer: int
    """64-bit layer id (:func:`layer_id` of the layer name)."""
    level: int
    bucket: int
    """Day index (may be negative before 1970)."""
    morton: int
    timestamp: int
    """Epoch seconds (UTC)."""


def layer_id(layer: str | int) -> int:
    """64-bit id of a layer name (BLAKE2b-64); an int is taken as an id already."""
    if isinstance(layer, int) and not isinstance(layer, bool):
        if not 0 <= layer < 1 << 64:
            raise BlockKeyError(f"layer id must be in 0..2**64-1, got {layer}")
        return layer
    if not isinstance(layer, str):
        raise BlockKeyError(f"layer must be a name or an int id, got {layer!r}")
    return _name_id(layer)


@functools.lru_cache(maxsize=4096)
def _name_id(layer: str) -> int:
    """:func:`layer_id` of a name (cached: every key of a read or write hashes it)."""
    if not _LAYER_RE.match(layer):
        raise BlockKeyError(
            f"layer name must be 1-200 chars of letters, digits and ._:/- "
            f"starting with a letter or digit, got {layer!r}"
        )
    return int.from_bytes(hashlib.blake2b(layer.encode(), digest_size=8).digest(), "big")


def to_epoch(t: int | datetime) -> int:
    """Epoch seconds of an int or a datetime (naive datetimes are taken as UTC)."""
    if isinstance(t, datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=UTC)
        return int(t.timestamp() // 1)
    if isinstance(t, bool) or not isinstance(t, int):
        raise BlockKeyError(f"timestamp must be int epoch seconds or a datetime, got {t!r}")
    if not -(1 << 63) <= t < 1 << 63:
        raise BlockKeyError(f"timestamp must fit in int64, got {t}")
    return t


def time_bucket(t: int | datetime) -> int:
    """Day index of a timestamp (``floor(ts / 86400)``)."""
    return to_epoch(t) // BUCKET_SECONDS


def encode_key(layer: str | int, level: int, morton: int, timestamp: int | datetime) -> bytes:
    """The 29-byte key of one block at one time."""
    lid = layer_id(layer)
    check_level(level)
    if not 0 <= morton < 1 << 64:
        raise BlockKeyError(f"morton must be in 0..2**64-1, got {morton}")
    ts = to_epoch(timestamp)
    bucket = ts // BUCKET_SECONDS + _BUCKET_OFFSET
    return _FMT.pack(lid, level, bucket, morton, ts + _TS_FLIP)


def decode_key(key: bytes) -> BlockKey:
    """Inverse of :func:`encode_key` (the layer comes back as its id)."""
    if len(key) != KEY_SIZE:
        raise BlockKeyError(f"a block key has {KEY_SIZE} bytes, got {len(key)}: {key.hex()}")
    lid, level, bucket, morton, ts = _FMT.unpack(key)
    return BlockKey(lid, level, bucket - _BUCKET_OFFSET, morton, ts - _TS_FLIP)


def key_timestamp(key: bytes) -> int:
    """The timestamp (epoch seconds) of a block key, read from its last 8 bytes."""
    return int.from_bytes(key[-8:], "big") - _TS_FLIP


def key_range(
    layer: str | int, level: int, t0: int | datetime, t1: int | datetime
) -> tuple[bytes, bytes]:
    """Inclusive ``(lo, hi)`` keys of every block of ``layer`` at ``level`` in the
    days touched by ``[t0, t1]``.

    Keys in the first and last day may fall outside ``[t0, t1]``: check
    ``decode_key(k).timestamp`` after the scan.
    """
    lid = layer_id(layer)
    check_level(level)
    b0, b1 = time_bucket(t0), time_bucket(t1)
    if b1 < b0:
        raise BlockKeyError(f"t1 must be >= t0, got t0={to_epoch(t0)} t1={to_epoch(t1)}")
    lo = _FMT.pack(lid, level, b0 + _BUCKET_OFFSET, 0, 0)
    hi = _FMT.pack(lid, level, b1 + _BUCKET_OFFSET, (1 << 64) - 1, (1 << 64) - 1)
    return lo, hi


def scan_ranges(
    layer: str | int,
    level: int,
    t0: int | datetime,
    t1: int | datetime,
    block_box: tuple[int, int, int, int],
    max_ranges: int | None = None,
) -> list[tuple[bytes, bytes]]:
    """Inclusive key ranges, in key order, for a layer x time window x block box.

    One run per day per Morton range of ``block_box = (bx0, by0, bx1, by1)``
    (``max_ranges`` caps the Morton ranges per day, over-covering; filter by
    decoding). As with :func:`key_range`, filter the timestamps of the edge days.
    """
    lid = layer_id(layer)
    check_level(level)
    b0, b1 = time_bucket(t0), time_bucket(t1)
    if b1 < b0:
        raise BlockKeyError(f"t1 must be >= t0, got t0={to_epoch(t0)} t1={to_epoch(t1)}")
    mranges = morton_ranges(*block_box, max_ranges=max_ranges)
    out: list[tuple[bytes, bytes]] = []
    top = (1 << 64) - 1
    for b in range(b0 + _BUCKET_OFFSET, b1 + _BUCKET_OFFSET + 1):
        for mlo, mhi in mranges:
            out.append((_FMT.pack(lid, level, b, mlo, 0), _FMT.pack(lid, level, b, mhi, top)))
    return out
