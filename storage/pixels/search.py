"""Pixel search: every (pixel, time) of a layer whose value satisfies a predicate.

The search descends the overview pyramid from the layer's top level: at each level it
keeps only the children whose statistics can satisfy the predicate (max for ``>``, min
for ``<``, both for ``between``), and reads pixel blocks only at the requested level.
``prune=False`` reads every block instead (the full scan used as a reference).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from gravitas.kernels.grid import bbox_to_pixel_range, pixel_to_lonlat
from gravitas.kernels.morton import morton_decode
from gravitas.schemas.grid import BLOCK_SIZE
from gravitas.storage.blocks import BlockStore
from gravitas.storage.keys import (
    decode_key,
    encode_key,
    key_timestamp,
    scan_ranges,
    to_epoch,
)
from gravitas.storage.pixels.errors import PixelSearchError
from gravitas.storage.pixels.layers import LayerInfo, LayerRegistry
from gravitas.storage.pixels.overviews import MAX, MIN, stats_key, stats_layer, valid_mask

__all__ = [
    "OPS",
    "SearchHits",
    "predicate_mask",
    "resolve_level",
    "search_pixels",
    "split_antimeridian",
    "stats_may_match",
]

OPS = (">", ">=", "<", "<=", "between")
BBox = tuple[float, float, float, float]


@dataclass
class SearchHits:
    """Matching pixels (grid coordinates at ``level``) and the work it took."""

    level: int
    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    """Epoch seconds."""
    value: np.ndarray
    total: int = 0
    counts: dict[int, int] = field(default_factory=dict)
    """Epoch seconds -> matches at that time (every time step in the window, zeros too)."""
    blocks_read: int = 0
    blocks_total: int = 0
    truncated: bool = False

    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre lon/lat of the matches."""
        return pixel_to_lonlat(self.level, self.x, self.y)

    def times(self) -> list[datetime]:
        """Match times as UTC datetimes."""
        return [datetime.fromtimestamp(int(t), UTC) for t in self.t]


def _bounds(op: str, value: float, high: float | None) -> tuple[float, float]:
    if op not in OPS:
        raise PixelSearchError(f"predicate op must be one of {OPS}, got {op!r}")
    if op == "between":
        if high is None or high < value:
            raise PixelSearchError(f"'between' needs value <= high, got {value} and {high}")
        return value, high
    return value, value


def predicate_mask(
    values: np.ndarray, op: str, value: float, high: float | None = None
) -> np.ndarray:
    """Boolean mask of ``values OP value`` (``between``: value <= v <= high)."""
    lo, hi = _bounds(op, value, high)
    with np.errstate(invalid="ignore"):
        if op == ">":
            return values > lo
        if op == ">=":
            return values >= lo
        if op == "<":
            return values < lo
        if op == "<=":
            return values <= lo
        return (values >= lo) & (values <= hi)


def stats_may_match(stats: np.ndarray, op: str, value: float, high: float | None = None) -> bool:
    """Whether a block with these statistics can hold a matching pixel."""
    lo, hi = _bounds(op, value, high)
    mn, mx = float(stats[MIN]), float(stats[MAX])
    if op == ">":
        return mx > lo
    if op == ">=":
        return mx >= lo
    if op == "<":
        return mn < lo
    if op == "<=":
        return mn <= lo
    return mx >= lo and mn <= hi


def resolve_level(info: LayerInfo, level: int | None) -> int:
    """The search/read level: the native level by default, else checked against the pyramid."""
    if level is None:
        return info.native_level
    if not info.top_level <= level <= info.native_level:
        raise PixelSearchError(
            f"layer {info.name} has levels {info.top_level}..{info.native_level} "
            f"(native {info.native_level}); got level {level}"
        )
    return level


def _block_box(px: tuple[int, int, int, int], level: int, at: int) -> tuple[int, int, int, int]:
    s = 8 + level - at
    return px[0] >> s, px[1] >> s, px[2] >> s, px[3] >> s


def _scan_stats(
    store: BlockStore, layer: str, level: int, ts: int, box: tuple[int, int, int, int]
) -> Iterable[tuple[int, np.ndarray]]:
    for lo, hi in scan_ranges(stats_layer(layer), level, ts, ts, box):
        for key, blk in store.scan(lo, hi):
            k = decode_key(key)
            if k.timestamp == ts:
                yield k.morton, blk.array[0]


def _count_blocks(
    store: BlockStore, layer: str, level: int, t0: int, t1: int, box: tuple[int, int, int, int]
) -> Counter[int]:
    """Blocks in ``box`` at ``level`` per timestamp of ``[t0, t1]``: one key-only scan
    for the whole window (keys hold the time last, so counting per timestamp would
    re-read every timestamp of the same day)."""
    tails: Counter[bytes] = Counter()
    for lo, hi in scan_ranges(stats_layer(layer), level, t0, t1, box):
        tails.update(key[-8:] for key in store.scan_keys(lo, hi))
    out: Counter[int] = Counter()
    for tail, n in tails.items():
        out[key_timestamp(tail)] += n
    return out


def _in_box(codes: list[int], box: tuple[int, int, int, int]) -> list[int]:
    if not codes:
        return []
    bx, by = morton_decode(np.asarray(codes, np.uint64))
    keep = (bx >= box[0]) & (bx <= box[2]) & (by >= box[1]) & (by <= box[3])
    return [c for c, k in zip(codes, keep, strict=True) if k]


def search_pixels(
    store: BlockStore,
    registry: LayerRegistry,
    layer: str,
    op: str,
    value: float,
    bbox: BBox,
    t0: int | datetime,
    t1: int | datetime,
    *,
    high: float | None = None,
    level: int | None = None,
    limit: int | None = None,
    prune: bool = True,
) -> SearchHits:
    """Find every pixel of ``layer`` in ``bbox`` x ``[t0, t1]`` with ``value OP threshold``.

    A bbox whose west is greater than its east crosses the antimeridian (as in STAC):
    both sides are searched and their matches joined, up to ``limit`` in all."""
    west, south, east, north = bbox
    if west <= east:
        return _search_box(
            store, registry, layer, op, value, bbox, t0, t1,
            high=high, level=level, limit=limit, prune=prune,
        )  # fmt: skip
    first = _search_box(
        store, registry, layer, op, value, (west, south, 180.0, north), t0, t1,
        high=high, level=level, limit=limit, prune=prune,
    )  # fmt: skip
    left = None if limit is None else max(limit - len(first.value), 0)
    second = _search_box(
        store, registry, layer, op, value, (-180.0, south, east, north), t0, t1,
        high=high, level=level, limit=left, prune=prune,
    )  # fmt: skip
    return _join(first, second)


def split_antimeridian(bbox: BBox) -> list[BBox]:
    """A bbox as boxes that do not cross 180 (one, or two when west > east)."""
    west, south, east, north = bbox
    if west <= east:
        return [bbox]
    return [(west, south, 180.0, north), (-180.0, south, east, north)]


def _join(a: SearchHits, b: SearchHits) -> SearchHits:
    """Matches of two disjoint areas as one result."""
    counts = dict(a.counts)
    for ts, n in b.counts.items():
        counts[ts] = counts.get(ts, 0) + n
    kept = len(a.value) + len(b.value)
    total = a.total + b.total
    return SearchHits(
        a.level,
        np.concatenate([a.x, b.x]),
        np.concatenate([a.y, b.y]),
        np.concatenate([a.t, b.t]),
        np.concatenate([a.value, b.value]),
        total=total,
        counts=counts,
        blocks_read=a.blocks_read + b.blocks_read,
        blocks_total=a.blocks_total + b.blocks_total,
        truncated=total > kept,
    )


def _search_box(
    store: BlockStore,
    registry: LayerRegistry,
    layer: str,
    op: str,
    value: float,
    bbox: BBox,
    t0: int | datetime,
    t1: int | datetime,
    *,
    high: float | None = None,
    level: int | None = None,
    limit: int | None = None,
    prune: bool = True,
) -> SearchHits:
    _bounds(op, value, high)
    info = registry.get(layer)
    lvl = resolve_level(info, level)
    px = bbox_to_pixel_range(lvl, bbox)
    box = _block_box(px, lvl, lvl)
    e = np.empty(0, np.int64)
    hits = SearchHits(lvl, e, e, e, np.empty(0))
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    ts_: list[np.ndarray] = []
    vs: list[np.ndarray] = []
    kept = 0
    times = registry.times(layer, to_epoch(t0), to_epoch(t1))
    totals = _count_blocks(store, layer, lvl, times[0], times[-1], box) if times else Counter()
    for ts in times:
        if prune:
            hits.blocks_total += totals[ts]
            cands = _descend(store, info, lvl, ts, px, op, value, high)
            blocks = store.get_many([encode_key(layer, lvl, c, ts) for c in cands])
            pairs = [(c, b.array, b.nodata) for c, b in zip(cands, blocks, strict=True) if b]
        else:
            pairs = []
            for lo, hi in scan_ranges(layer, lvl, ts, ts, box):
                for key, b in store.scan(lo, hi):
                    k = decode_key(key)
                    if k.timestamp == ts:
                        pairs.append((k.morton, b.array, b.nodata))
            hits.blocks_total += len(pairs)
        hits.blocks_read += len(pairs)
        n_ts = 0
        for code, arr, nodata in pairs:
            x, y, v = _match_block(code, arr, nodata, px, op, value, high)
            n_ts += len(x)
            if limit is None or kept < limit:
                take = len(x) if limit is None else min(len(x), limit - kept)
                xs.append(x[:take])
                ys.append(y[:take])
                vs.append(v[:take])
                ts_.append(np.full(take, ts, np.int64))
                kept += take
        hits.counts[ts] = n_ts
        hits.total += n_ts
    if xs:
        hits.x, hits.y = np.concatenate(xs), np.concatenate(ys)
        hits.t, hits.value = np.concatenate(ts_), np.concatenate(vs)
    hits.truncated = hits.total > kept
    return hits


def _descend(
    store: BlockStore,
    info: LayerInfo,
    lvl: int,
    ts: int,
    px: tuple[int, int, int, int],
    op: str,
    value: float,
    high: float | None,
) -> list[int]:
    top = info.top_level
    cands = [
        m
        for m, st in _scan_stats(store, info.name, top, ts, _block_box(px, lvl, top))
        if st[0] > 0 and stats_may_match(st, op, value, high)
    ]
    for level in range(top + 1, lvl + 1):
        kids = _in_box([(m << 2) | q for m in cands for q in range(4)], _block_box(px, lvl, level))
        stats = store.get_many([stats_key(info.name, level, c, ts) for c in kids])
        cands = [
            c
            for c, s in zip(kids, stats, strict=True)
            if s is not None and s.array[0][0] > 0 and stats_may_match(s.array[0], op, value, high)
        ]
    return cands


def _match_block(
    code: int,
    arr: np.ndarray,
    nodata: float | int | None,
    px: tuple[int, int, int, int],
    op: str,
    value: float,
    high: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bx, by = (int(v) for v in morton_decode(np.uint64(code)))
    ok = valid_mask(arr, nodata) & predicate_mask(arr, op, value, high)
    rows, cols = np.nonzero(ok)
    x = bx * BLOCK_SIZE + cols.astype(np.int64)
    y = by * BLOCK_SIZE + (BLOCK_SIZE - 1) - rows.astype(np.int64)
    inside = (x >= px[0]) & (x <= px[2]) & (y >= px[1]) & (y <= px[3])
    return x[inside], y[inside], arr[rows[inside], cols[inside]].astype(np.float64)
