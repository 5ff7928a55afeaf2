"""Deterministic block value encoding: a small header, then compressed array bytes.

Layout (all integers little-endian)::

    magic  b"GVB1"                                   4
    codec id, high bit set when windowed             1  (see CODECS)
    dtype  length + ascii numpy dtype.str ("<f4")    1 + n
    ndim, then shape as uint32 each                  1 + 4*ndim
    nodata flag, then nodata as one dtype value      1 (+ itemsize)
    windowed only: row0, row1, col0, col1 (uint32)   16
    raw payload length (uint64), crc32 of the stored payload (uint32)
    payload: the compressed C-order little-endian array bytes (of the window)

*Windowed* blocks: a 2-D block whose pixels outside a rectangle ``[row0:row1, col0:col1]``
all equal its nodata value bit for bit (scene edges, small scenes, coarse overview
blocks) stores only that rectangle; decoding fills the rest with nodata. An empty block
has an empty window. Blocks without nodata, full windows and other shapes are stored
whole, as before the window existed, so older values decode unchanged.

The same array, nodata and codec always give the same bytes, so re-writing a block is
idempotent. The default codec, ``auto``, was chosen by measurement (``bench/codecs.py``,
``bench/README.md`` "## block codec"): zstd level 1 with and without a byte shuffle,
whichever is smaller (shuffle wins on smooth float fields, plain zstd on quantised
reflectances); decoding speed is the same either way.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numcodecs
import numpy as np

from gravitas.storage.blocks.base import Block
from gravitas.storage.blocks.errors import BlockEncodeError, CorruptBlockError

__all__ = [
    "AUTO",
    "CODECS",
    "DEFAULT_CODEC",
    "StoredWindow",
    "data_window",
    "decode_block",
    "decode_window",
    "encode_block",
]

MAGIC: Final = b"GVB1"
_TAIL = struct.Struct("<QI")
_WINDOW = struct.Struct("<4I")
_WINDOWED: Final = 0x80


def _shuffle(data: bytes, itemsize: int) -> Any:
    """Byte-shuffled ``data`` (a buffer; no extra copy into ``bytes``)."""
    return numcodecs.Shuffle(elementsize=itemsize).encode(data) if itemsize > 1 else data


def _unshuffle(data: bytes, itemsize: int) -> bytes:
    if itemsize == 1:
        return data
    return bytes(numcodecs.Shuffle(elementsize=itemsize).decode(data))


def _zstd(level: int) -> numcodecs.Zstd:
    return numcodecs.Zstd(level=level)


Encoder = Callable[[bytes, int], bytes]
Decoder = Callable[[bytes, int, int], bytes]

# name -> (id, encode(raw, itemsize), decode(stored, itemsize, raw_len)); ids are forever
CODECS: Final[dict[str, tuple[int, Encoder, Decoder]]] = {
    "raw": (0, lambda b, s: b, lambda b, s, n: b),
    "zlib-1": (1, lambda b, s: zlib.compress(b, 1), lambda b, s, n: zlib.decompress(b)),
    "zlib-6": (1, lambda b, s: zlib.compress(b, 6), lambda b, s, n: zlib.decompress(b)),
    "zstd-1": (
        2,
        lambda b, s: bytes(_zstd(1).encode(b)),
        lambda b, s, n: bytes(_zstd(1).decode(b)),
    ),
    "zstd-3": (
        2,
        lambda b, s: bytes(_zstd(3).encode(b)),
        lambda b, s, n: bytes(_zstd(3).decode(b)),
    ),
    "lz4": (
        3,
        lambda b, s: bytes(numcodecs.LZ4(1).encode(b)),
        lambda b, s, n: bytes(numcodecs.LZ4(1).decode(b)),
    ),
    "shuffle-zstd-1": (
        4,
        lambda b, s: bytes(_zstd(1).encode(_shuffle(b, s))),
        lambda b, s, n: _unshuffle(bytes(_zstd(1).decode(b)), s),
    ),
    "shuffle-zstd-3": (
        4,
        lambda b, s: bytes(_zstd(3).encode(_shuffle(b, s))),
        lambda b, s, n: _unshuffle(bytes(_zstd(3).decode(b)), s),
    ),
    "shuffle-lz4": (
        5,
        lambda b, s: bytes(numcodecs.LZ4(1).encode(_shuffle(b, s))),
        lambda b, s, n: _unshuffle(bytes(numcodecs.LZ4(1).decode(b)), s),
    ),
    "shuffle-zlib-1": (
        6,
        lambda b, s: zlib.compress(_shuffle(b, s), 1),
        lambda b, s, n: _unshuffle(zlib.decompress(b), s),
    ),
}
_DECODERS: dict[int, Decoder] = {cid: dec for cid, _enc, dec in CODECS.values()}
AUTO: Final = "auto"
"""Encode with zstd-1 and with shuffle + zstd-1, keep the smaller (still deterministic);
tiny payloads are stored raw."""
_AUTO_CANDIDATES: Final = ("shuffle-zstd-1", "zstd-1")
_AUTO_RAW_BYTES: Final = 256
"""``auto`` stores payloads this small raw (block statistics, tiny windows): compressing
them saves a few bytes at the price of two compressor calls."""
DEFAULT_CODEC: Final = AUTO


def _nodata_bytes(nodata: float | int, dtype: np.dtype) -> bytes:
    """The nodata value as one element of ``dtype``; it must be exactly representable."""
    try:
        with np.errstate(all="ignore"):
            cast = np.array(nodata).astype(dtype)
    except (OverflowError, ValueError, TypeError) as exc:
        raise BlockEncodeError(f"nodata {nodata!r} does not fit dtype {dtype}: {exc}") from exc
    same = (isinstance(nodata, float) and math.isnan(nodata) and bool(np.isnan(cast))) or (
        cast.item() == nodata
    )
    if not same:
        raise BlockEncodeError(
            f"nodata {nodata!r} is not representable in dtype {dtype} (becomes {cast.item()!r})"
        )
    return cast.tobytes()


def _bits(dtype: np.dtype) -> np.dtype:
    """The unsigned integer dtype of ``dtype``'s width (for bit-exact comparisons)."""
    return np.dtype(f"<u{dtype.itemsize}")


def data_window(arr: np.ndarray, nodata: bytes) -> tuple[int, int, int, int] | None:
    """``(row0, row1, col0, col1)`` bounding every element of a 2-D ``arr`` that differs
    from ``nodata`` (one element's bytes) bit for bit; ``(0, 0, 0, 0)`` when none does.
    None when the window is the whole array (or ``arr`` is not 2-D little-endian)."""
    if arr.ndim != 2 or arr.size == 0 or arr.dtype.byteorder == ">":
        return None
    bits_dtype = _bits(arr.dtype)
    bits = np.frombuffer(nodata, bits_dtype, count=1)[0]
    view = arr.view(bits_dtype)
    # cheap exit for full blocks: data on all four edges means the window is everything
    if (
        (view[0] != bits).any()
        and (view[-1] != bits).any()
        and (view[:, 0] != bits).any()
        and (view[:, -1] != bits).any()
    ):
        return None
    data = view != bits
    rows = np.flatnonzero(data.any(axis=1))
    if rows.size == 0:
        return (0, 0, 0, 0)
    cols = np.flatnonzero(data[rows[0] : rows[-1] + 1].any(axis=0))
    return (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


def encode_block(block: Block, codec: str = DEFAULT_CODEC) -> bytes:
    """Bytes of ``block``: header + compressed payload (deterministic)."""
    if codec not in CODECS and codec != AUTO:
        raise BlockEncodeError(f"unknown codec {codec!r}; choose one of {sorted([*CODECS, AUTO])}")
    arr = block.array
    if arr.dtype.kind not in "biuf" or arr.dtype.itemsize > 8:
        raise BlockEncodeError(
            f"block dtype must be bool, int, uint or float up to 64 bits, got {arr.dtype}"
        )
    dtype = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    nodata = None if block.nodata is None else _nodata_bytes(block.nodata, dtype)
    window = None if nodata is None else data_window(arr, nodata)
    if window is not None:
        arr = arr[window[0] : window[1], window[2] : window[3]]
    # one copy, also for strided views (tobytes writes C order)
    raw = (arr if arr.dtype == dtype else arr.astype(dtype)).tobytes()
    dstr = dtype.str.encode()
    if codec == AUTO and len(raw) <= _AUTO_RAW_BYTES:
        cid, payload = CODECS["raw"][0], raw
    elif codec == AUTO:
        options = [(CODECS[c][0], CODECS[c][1](raw, dtype.itemsize)) for c in _AUTO_CANDIDATES]
        cid, payload = min(options, key=lambda o: len(o[1]))
    else:
        cid, enc, _dec = CODECS[codec]
        payload = enc(raw, dtype.itemsize)
    shape = block.array.shape
    flag = _WINDOWED if window is not None else 0
    parts = [MAGIC, bytes([cid | flag, len(dstr)]), dstr, bytes([len(shape)])]
    parts.append(struct.pack(f"<{len(shape)}I", *shape))
    parts += [b"\x00"] if nodata is None else [b"\x01", nodata]
    if window is not None:
        parts.append(_WINDOW.pack(*window))
    parts += [_TAIL.pack(len(raw), zlib.crc32(payload)), payload]
    return b"".join(parts)


@dataclass(frozen=True)
class StoredWindow:
    """A decoded value before it becomes a whole block: the pixels of its data window.

    Readers that copy blocks into a larger array (mosaics) take :attr:`data` at
    :attr:`window` and skip the nodata around it; :meth:`block` gives the whole block.
    """

    shape: tuple[int, ...]
    """Shape of the whole block."""
    dtype: np.dtype
    nodata: float | int | None
    window: tuple[int, int, int, int] | None
    """``(row0, row1, col0, col1)`` of :attr:`data` in the block; None = the whole block."""
    data: np.ndarray
    nodata_bits: int = 0
    """The nodata element as an unsigned integer of the dtype's width (bit-exact fill)."""

    def block(self) -> Block:
        """The whole block (the window placed in nodata)."""
        if self.window is None:
            return Block(self.data, nodata=self.nodata)
        full = np.empty(self.shape, self.dtype)
        full.view(_bits(self.dtype))[...] = self.nodata_bits
        r0, r1, c0, c1 = self.window
        full[r0:r1, c0:c1] = self.data
        return Block(full, nodata=self.nodata)


def decode_block(data: bytes, key: bytes | None = None) -> Block:
    """Inverse of :func:`encode_block`; any damage raises :class:`CorruptBlockError`."""
    return decode_window(data, key).block()


def decode_window(data: bytes, key: bytes | None = None) -> StoredWindow:
    """Decode a value up to its data window (see :class:`StoredWindow`); any damage
    raises :class:`CorruptBlockError` naming ``key``."""
    where = f" at key {key.hex()}" if key is not None else ""
    try:
        return _decode(memoryview(data))
    except CorruptBlockError as exc:
        raise CorruptBlockError(f"corrupt block value{where}: {exc}") from None
    except Exception as exc:  # truncated header, bad dtype, decompressor errors
        raise CorruptBlockError(
            f"corrupt block value{where} ({len(data)} bytes): {type(exc).__name__}: {exc}"
        ) from exc


def _decode(buf: memoryview) -> StoredWindow:
    if bytes(buf[:4]) != MAGIC:
        raise CorruptBlockError(f"bad magic {bytes(buf[:4])!r}, expected {MAGIC!r}")
    cid, dlen = buf[4] & ~_WINDOWED, buf[5]
    windowed = bool(buf[4] & _WINDOWED)
    pos = 6
    dtype = np.dtype(bytes(buf[pos : pos + dlen]).decode("ascii"))
    pos += dlen
    ndim = buf[pos]
    pos += 1
    shape = struct.unpack_from(f"<{ndim}I", buf, pos)
    pos += 4 * ndim
    nodata: float | int | None = None
    nodata_bits = 0
    if buf[pos] == 1:
        nodata = np.frombuffer(buf, dtype=dtype, count=1, offset=pos + 1).item()
        nodata_bits = int(np.frombuffer(buf, _bits(dtype), count=1, offset=pos + 1)[0])
        pos += 1 + dtype.itemsize
    elif buf[pos] != 0:
        raise CorruptBlockError(f"bad nodata flag {buf[pos]}")
    else:
        pos += 1
    window: tuple[int, int, int, int] | None = None
    if windowed:
        if nodata is None or ndim != 2:
            raise CorruptBlockError("windowed block without nodata or not 2-D")
        window = _WINDOW.unpack_from(buf, pos)
        pos += _WINDOW.size
    raw_len, crc = _TAIL.unpack_from(buf, pos)
    pos += _TAIL.size
    payload = bytes(buf[pos:])
    if zlib.crc32(payload) != crc:
        raise CorruptBlockError("payload checksum mismatch")
    if cid not in _DECODERS:
        raise CorruptBlockError(f"unknown codec id {cid}")
    raw = _DECODERS[cid](payload, dtype.itemsize, raw_len) if raw_len else b""
    inner = shape if window is None else (window[1] - window[0], window[3] - window[2])
    expected = dtype.itemsize * math.prod(inner)
    if len(raw) != raw_len or raw_len != expected or min(inner) < 0:
        raise CorruptBlockError(f"payload has {len(raw)} bytes, shape {inner} needs {expected}")
    if window is not None and (window[1] > shape[0] or window[3] > shape[1]):
        raise CorruptBlockError(f"window {window} lies outside shape {shape}")
    arr = np.frombuffer(raw, dtype=dtype).reshape(inner)
    return StoredWindow(tuple(shape), dtype, nodata, window, arr, nodata_bits)
