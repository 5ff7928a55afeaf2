"""Read a band subset of a chunked, deflated HDF5/NetCDF4 cube chunk by chunk on threads.

A hyperslab read through the HDF5 library (netCDF4, h5py, xarray) inflates every chunk
with zlib on one thread, then un-shuffles all of its bytes. Here the chunk index is read
once through h5py; then on a thread pool each chunk's stored bytes are read straight from
the file (``os.pread``), inflated with libdeflate (the ``deflate`` package: about twice
zlib's speed, exact output size, adler32 checked, GIL released), and only the wanted
bands are un-shuffled and copied into the output. A deflate stream cannot be entered in
the middle, so every chunk holding a wanted band is still inflated whole; the gain is
the faster inflate, both cores, and un-shuffling 49 of 285 bands instead of all.

Only layouts whose decoding is exactly known are planned: a chunked 3-D dataset of an
integer/float type whose filters are byte shuffle then deflate (either, both or none),
with no scale/offset attributes, in a file without a user block. :func:`plan_chunked_read`
returns the reason for anything else, and the caller falls back to its general reader.
A chunk that does not decode to its exact size raises :class:`CorruptFileError` naming
the file and the chunk.

Example::

    plan = plan_chunked_read(Path("scene.nc"), "radiance")
    if isinstance(plan, ChunkPlan):
        cube = plan.read_bands(np.arange(234, 283))   # float32 (rows, cols, 49)
"""

from __future__ import annotations

import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import deflate
import h5py
import numpy as np

from gravitas.schemas.errors import CorruptFileError

__all__ = ["ChunkPlan", "StoredChunk", "plan_chunked_read", "read_workers"]

FILTER_DEFLATE = 1
FILTER_SHUFFLE = 2
PIPELINES = {(), (FILTER_DEFLATE,), (FILTER_SHUFFLE,), (FILTER_SHUFFLE, FILTER_DEFLATE)}
"""Filter pipelines (in writing order) decoded here: netCDF4's zlib/shuffle options."""
SCALING_ATTRS = ("scale_factor", "add_offset", "_Unsigned")


def read_workers() -> int:
    """Threads for chunk decoding: the CPUs this process may run on (at most 8)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


@dataclass(frozen=True)
class StoredChunk:
    """One allocated chunk: its first element's index, skipped-filter mask, file bytes."""

    origin: tuple[int, int, int]
    filter_mask: int
    """Bit i set: filter i of the pipeline was skipped for this chunk."""
    byte_offset: int
    size: int


@dataclass(frozen=True)
class ChunkPlan:
    """How to decode a 3-D chunked dataset (rows, cols, bands); the last axis is bands."""

    path: Path
    name: str
    shape: tuple[int, int, int]
    chunk_shape: tuple[int, int, int]
    dtype: np.dtype
    filters: tuple[int, ...]
    """Filter ids in the order HDF5 applied them when writing (a member of PIPELINES)."""
    chunks: tuple[StoredChunk, ...]
    fill_value: float
    """The dataset's HDF5 fill value as float32: what never-written chunks read as."""

    @property
    def chunk_bytes(self) -> int:
        return int(np.prod(self.chunk_shape)) * self.dtype.itemsize

    def read_bands(
        self, bands: np.ndarray, *, nan_value: float | None = None, workers: int | None = None
    ) -> np.ndarray:
        """The cube at band indices ``bands`` (strictly increasing) as float32 (rows, cols, n).

        Values equal to ``nan_value`` (compared in float32) become NaN. Raises
        :class:`CorruptFileError` for a chunk that is cut short or does not decode.
        """
        idx = np.asarray(bands, dtype=np.int64)
        if idx.ndim != 1 or idx.size == 0 or np.any(np.diff(idx) <= 0):
            raise ValueError("bands must be a non-empty, strictly increasing index array")
        if idx[0] < 0 or idx[-1] >= self.shape[2]:
            raise ValueError(f"band index out of range 0..{self.shape[2] - 1}")
        out = _anonymous((self.shape[0], self.shape[1], idx.size))
        cb = self.chunk_shape[2]
        wanted = [c for c in self.chunks if _span(idx, c.origin[2], cb)[1] > 0]
        self._fill_unallocated(out, idx, nan_value)
        n = workers or read_workers()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            if n == 1 or len(wanted) < 2:
                for c in wanted:
                    self._decode_into(fd, c, idx, out, nan_value)
            else:
                with ThreadPoolExecutor(max_workers=n, thread_name_prefix="h5chunk") as pool:
                    jobs = [
                        pool.submit(self._decode_into, fd, c, idx, out, nan_value) for c in wanted
                    ]
                    for job in jobs:
                        job.result()
        finally:
            os.close(fd)
        return out

    def _fill_unallocated(self, out: np.ndarray, idx: np.ndarray, nan_value: float | None) -> None:
        """Never-written chunks read as the fill value, as the HDF5 library returns them."""
        grid = tuple(-(-s // c) for s, c in zip(self.shape, self.chunk_shape, strict=True))
        covered = np.zeros(grid, dtype=bool)
        for c in self.chunks:
            covered[tuple(o // s for o, s in zip(c.origin, self.chunk_shape, strict=True))] = True
        if covered.all():
            return
        fill = np.float32(self.fill_value)
        if nan_value is not None and fill == np.float32(nan_value):
            fill = np.float32(np.nan)
        cr, cc, cb = self.chunk_shape
        for i, j, k in np.argwhere(~covered):
            lo, cnt = _span(idx, int(k) * cb, cb)
            out[i * cr : (i + 1) * cr, j * cc : (j + 1) * cc, lo : lo + cnt] = fill

    def _decode_into(
        self, fd: int, c: StoredChunk, idx: np.ndarray, out: np.ndarray, nan_value: float | None
    ) -> None:
        where = f"{self.path}: {self.name} chunk at {list(c.origin)} (file offset {c.byte_offset})"
        raw = os.pread(fd, c.size, c.byte_offset)
        if len(raw) != c.size:
            raise CorruptFileError(
                f"{where} is cut short: {len(raw)} of {c.size} bytes in the file; "
                "the file is truncated, fetch it again"
            )
        active = [f for i, f in enumerate(self.filters) if not c.filter_mask & (1 << i)]
        data: bytes | bytearray = raw
        if FILTER_DEFLATE in active:
            try:
                data = deflate.zlib_decompress(raw, self.chunk_bytes)
            except deflate.DeflateError as exc:
                raise CorruptFileError(
                    f"{where} does not inflate to {self.chunk_bytes} bytes ({exc}); "
                    "the file is damaged, fetch it again"
                ) from None
        if len(data) != self.chunk_bytes:
            raise CorruptFileError(
                f"{where} holds {len(data)} bytes, expected {self.chunk_bytes}; "
                "the file is damaged, fetch it again"
            )
        r0, c0, b0 = c.origin
        cr, cc, cb = self.chunk_shape
        nr, nc = min(cr, self.shape[0] - r0), min(cc, self.shape[1] - c0)
        lo, cnt = _span(idx, b0, cb)
        local = idx[lo : lo + cnt] - b0
        take: slice | np.ndarray = (
            slice(int(local[0]), int(local[-1]) + 1) if local[-1] - local[0] + 1 == cnt else local
        )
        if FILTER_SHUFFLE in active:  # byte k of every element is stored in plane k
            planes = np.frombuffer(data, np.uint8).reshape(self.dtype.itemsize, cr, cc, cb)
            gathered = np.empty((nr, nc, cnt, self.dtype.itemsize), np.uint8)
            for k in range(self.dtype.itemsize):  # un-shuffle only the wanted bands
                gathered[..., k] = planes[k][:nr, :nc, take]
            sub = gathered.view(self.dtype)[..., 0].astype(np.float32, copy=False)
        else:
            sub = np.frombuffer(data, self.dtype).reshape(self.chunk_shape)[:nr, :nc, take]
            sub = sub.astype(np.float32)
        if nan_value is not None:
            sub[sub == nan_value] = np.nan
        out[r0 : r0 + nr, c0 : c0 + nc, lo : lo + cnt] = sub


def _anonymous(shape: tuple[int, int, int]) -> np.ndarray:
    """A float32 array on its own anonymous mapping (freed with the array).

    numpy asks for transparent huge pages on large arrays; where the kernel compacts
    memory synchronously for them (THP defrag ``madvise``, as on the bench machine), the
    first touch of a 311 MB cube cost 1-3 CPU-s of page faults in a fresh process; plain
    pages cost about 0.1 s.
    """
    nbytes = int(np.prod(shape)) * 4
    if nbytes < 1 << 26:
        return np.empty(shape, dtype=np.float32)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype=np.float32).reshape(shape)


def _span(idx: np.ndarray, b0: int, cb: int) -> tuple[int, int]:
    """(first position, count) in ``idx`` of the bands inside [b0, b0 + cb)."""
    lo = int(np.searchsorted(idx, b0))
    return lo, int(np.searchsorted(idx, b0 + cb)) - lo


def plan_chunked_read(path: Path, name: str) -> ChunkPlan | str:
    """The chunk plan of 3-D dataset ``name``, or why it cannot be read chunk by chunk.

    Call with the HDF5 lock held (h5py metadata calls); decoding needs no lock. Errors
    opening the file are returned as reasons: the general reader reports them.
    """
    try:
        with h5py.File(path, "r") as f:
            if f.userblock_size:
                return f"user block of {f.userblock_size} bytes"
            ds = f.get(name)
            if not isinstance(ds, h5py.Dataset):
                return f"no dataset {name!r}"
            return _plan(path, name, ds)
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        return f"h5py cannot read the chunk index ({exc})"


def _plan(path: Path, name: str, ds: h5py.Dataset) -> ChunkPlan | str:
    if ds.ndim != 3:
        return f"{ds.ndim}-D dataset"
    if ds.chunks is None:
        return "not chunked"
    if ds.dtype.kind not in "iuf" or ds.dtype.itemsize > 8:
        return f"data type {ds.dtype}"
    for attr in SCALING_ATTRS:
        if attr in ds.attrs:
            return f"attribute {attr}"
    if ds.external:
        return "external storage"
    dcpl = ds.id.get_create_plist()
    filters = []
    for i in range(dcpl.get_nfilters()):
        code, _flags, _values, fname = dcpl.get_filter(i)
        filters.append(int(code))
        if code not in (FILTER_DEFLATE, FILTER_SHUFFLE):
            label = fname.decode(errors="replace") if isinstance(fname, bytes) else str(fname)
            return f"filter {code} ({label})"
    if tuple(filters) not in PIPELINES:
        return f"filter order {filters}"
    chunks: list[StoredChunk] = []

    def visit(info: h5py.h5d.StoreInfo) -> None:
        o = info.chunk_offset
        chunks.append(
            StoredChunk(
                (int(o[0]), int(o[1]), int(o[2])),
                int(info.filter_mask),
                int(info.byte_offset),
                int(info.size),
            )
        )

    try:
        ds.id.chunk_iter(visit)
    except (AttributeError, NotImplementedError):  # HDF5 < 1.12.3: one call per chunk
        for i in range(ds.id.get_num_chunks()):
            visit(ds.id.get_chunk_info(i))
    fill = np.asarray(0 if ds.fillvalue is None else ds.fillvalue, dtype=ds.dtype)
    s, cs = ds.shape, ds.chunks
    return ChunkPlan(
        path=path,
        name=name,
        shape=(int(s[0]), int(s[1]), int(s[2])),
        chunk_shape=(int(cs[0]), int(cs[1]), int(cs[2])),
        dtype=np.dtype(ds.dtype),
        filters=tuple(filters),
        chunks=tuple(chunks),
        fill_value=float(fill.astype(np.float32)),
    )
