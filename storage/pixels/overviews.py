"""Overview pyramids: per-block statistics at every level and coarse per-pixel arrays.

- Statistics live in their own key space, layer ``stats:<layer>``, at the native level
  and every coarser level up to the layer's top level: one (1, 8) float64 block
  ``[count, sum, sumsq, min, max, weight, wsum, wsumsq]`` where ``weight`` sums the
  cos-lat area weights of the valid pixels and ``wsum``/``wsumsq`` are area-weighted.
  A parent's statistics combine its four children's, so they describe the NATIVE pixels
  below it (min/max bound every coarse mean too, which is what search pruning needs).
- Coarse arrays live under the layer itself at coarser levels: a level ``l-1`` block is
  the 2 x 2 mean (categorical: first valid of the 2 x 2) of its four level-``l``
  children, each child filling one 128 x 128 quadrant.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gravitas.kernels.grid import block_row_weights
from gravitas.kernels.morton import morton_decode
from gravitas.storage.blocks import Block, BlockStore
from gravitas.storage.keys import encode_key
from gravitas.storage.pixels.layers import LayerInfo

__all__ = [
    "N_STATS",
    "block_stats",
    "coarsen_children",
    "combine_stats",
    "stats_key",
    "stats_layer",
    "update_pyramid",
]

N_STATS = 8
COUNT, SUM, SUMSQ, MIN, MAX, WEIGHT, WSUM, WSUMSQ = range(N_STATS)
_HALF = 128


def stats_layer(layer: str) -> str:
    """Name of the key space holding a layer's block statistics."""
    return f"stats:{layer}"


def stats_key(layer: str, level: int, morton: int, ts: int) -> bytes:
    """Key of the statistics of one block."""
    return encode_key(stats_layer(layer), level, morton, ts)


def valid_mask(arr: np.ndarray, nodata: float | int | None) -> np.ndarray:
    """Pixels that hold data (not NaN, not nodata)."""
    if arr.dtype.kind == "f":
        ok = ~np.isnan(arr)
        if nodata is not None and not np.isnan(nodata):
            ok &= arr != nodata
        return ok
    if nodata is None:
        return np.ones(arr.shape, bool)
    return arr != nodata


def block_stats(arr: np.ndarray, nodata: float | int | None, level: int, by: int) -> np.ndarray:
    """The 8 statistics of one block array (row 0 = north) of block row ``by``."""
    ok = valid_mask(arr, nodata)
    out = np.zeros(N_STATS, np.float64)
    out[MIN], out[MAX] = np.inf, -np.inf
    n = int(ok.sum())
    if n == 0:
        return out
    v = np.where(ok, arr, 0).astype(np.float64)
    w = np.where(ok, block_row_weights(level, by)[: arr.shape[0], None], 0.0)
    vals = arr[ok].astype(np.float64)
    out[COUNT] = n
    out[SUM] = v.sum()
    out[SUMSQ] = (v * v).sum()
    out[MIN] = vals.min()
    out[MAX] = vals.max()
    out[WEIGHT] = w.sum()
    out[WSUM] = (w * v).sum()
    out[WSUMSQ] = (w * v * v).sum()
    return out


def combine_stats(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Statistics of the union of blocks."""
    out = np.zeros(N_STATS, np.float64)
    out[MIN], out[MAX] = np.inf, -np.inf
    for p in parts:
        out[[COUNT, SUM, SUMSQ, WEIGHT, WSUM, WSUMSQ]] += p[
            [COUNT, SUM, SUMSQ, WEIGHT, WSUM, WSUMSQ]
        ]
        out[MIN] = min(out[MIN], p[MIN])
        out[MAX] = max(out[MAX], p[MAX])
    return out


def _halve(child: np.ndarray, nodata: float | int | None, categorical: bool) -> np.ndarray:
    """A 256 x 256 child reduced to 128 x 128: 2 x 2 mean (or first valid for categories)."""
    ok = valid_mask(child, nodata).reshape(_HALF, 2, _HALF, 2)
    c = child.reshape(_HALF, 2, _HALF, 2)
    if categorical:
        out = np.full((_HALF, _HALF), nodata if nodata is not None else 0, child.dtype)
        for i, j in ((1, 1), (1, 0), (0, 1), (0, 0)):  # last assignment (0, 0) wins
            sub = ok[:, i, :, j]
            out[sub] = c[:, i, :, j][sub]
        return out
    out_dtype = child.dtype if child.dtype.kind == "f" else np.float32
    rows = np.flatnonzero(ok.any(axis=(1, 2, 3)))
    out = np.full((_HALF, _HALF), np.nan, out_dtype)
    if rows.size == 0:  # an all-nodata child: nothing to average
        return out
    # only the 2-row bands that hold data (scene edges leave most of a block empty); the
    # same numpy reduction as over the whole block, so the bytes are the same
    lo, hi = int(rows[0]), int(rows[-1]) + 1
    okb, cb = ok[lo:hi], c[lo:hi]
    n = okb.sum(axis=(1, 3))
    sm = np.where(okb, cb, 0).astype(np.float64).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        out[lo:hi] = np.where(n > 0, sm / np.maximum(n, 1), np.nan)
    return out


def coarsen_children(
    children: Sequence[np.ndarray | None], nodata: float | int | None, categorical: bool
) -> np.ndarray | None:
    """The parent array of four children in Z order (None = missing); None if all are."""
    present = [c for c in children if c is not None]
    if not present:
        return None
    dtype = present[0].dtype if (categorical or present[0].dtype.kind == "f") else np.float32
    fill = nodata if categorical and nodata is not None else np.nan
    parent = np.full((2 * _HALF, 2 * _HALF), fill, dtype)
    for q, child in enumerate(children):
        if child is None:
            continue
        r0 = 0 if q >> 1 else _HALF  # odd child y = north half = top rows
        c0 = _HALF if q & 1 else 0
        parent[r0 : r0 + _HALF, c0 : c0 + _HALF] = _halve(child, nodata, categorical)
    return parent


def _coarse_nodata(info: LayerInfo) -> float | int | None:
    return info.nodata if info.categorical else float("nan")


def update_pyramid(store: BlockStore, info: LayerInfo, ts: int, mortons: Sequence[int]) -> int:
    """Recompute statistics of native blocks ``mortons`` and every ancestor up to the top.

    Each parent is rebuilt from its four children as they are stored now, so repeating
    an update (replay) writes the same bytes. Returns how many values were written.
    """
    layer, native = info.name, info.native_level
    written = 0
    codes = sorted(set(int(m) for m in mortons))
    blocks = store.get_many([encode_key(layer, native, m, ts) for m in codes])
    bys: Sequence[int] = (
        [int(v) for v in morton_decode(np.asarray(codes, np.uint64))[1]] if codes else []
    )
    items = [
        (
            stats_key(layer, native, m, ts),
            Block(block_stats(b.array, b.nodata, native, int(by))[None]),
        )
        for m, b, by in zip(codes, blocks, bys, strict=True)
        if b is not None
    ]
    written += store.put_many(items)
    current = [m for m, b in zip(codes, blocks, strict=True) if b is not None]
    nodata = _coarse_nodata(info)
    for level in range(native - 1, info.top_level - 1, -1):
        parents = sorted({m >> 2 for m in current})
        kids = [(p << 2) | q for p in parents for q in range(4)]
        arrays = store.get_many([encode_key(layer, level + 1, c, ts) for c in kids])
        stats = store.get_many([stats_key(layer, level + 1, c, ts) for c in kids])
        out: list[tuple[bytes, Block]] = []
        for i, p in enumerate(parents):
            quad = arrays[4 * i : 4 * i + 4]
            parent = coarsen_children(
                [b.array if b is not None else None for b in quad],
                info.nodata if info.categorical else float("nan"),
                info.categorical,
            )
            if parent is None:
                continue
            st = combine_stats([s.array[0] for s in stats[4 * i : 4 * i + 4] if s is not None])
            out.append((encode_key(layer, level, p, ts), Block(parent, nodata=nodata)))
            out.append((stats_key(layer, level, p, ts), Block(st[None])))
        written += store.put_many(out)
        current = parents
    return written
