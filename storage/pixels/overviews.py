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
    valid = valid_mask(child, nodata)
    ok = valid.reshape(_HALF, 2, _HALF, 2)
    c = child.reshape(_HALF, 2, _HALF, 2)
    if categorical:
        out = np.full((_HALF, _HALF), nodata if nodata is not None else 0, child.dtype)
        for i, j in ((1, 1), (1, 0), (0, 1), (0, 0)):  # last assignment (0, 0) wins
            sub = ok[:, i, :, j]
            out[sub] = c[:, i, :, j][sub]
        return out
    out_dtype = child.dtype if child.dtype.kind == "f" else np.float32
    out = np.full((_HALF, _HALF), np.nan, out_dtype)
    # only the 2 x 2 cells of the rectangle that holds data (scene edges and small scenes
    # leave most of a block empty); each cell sums in a fixed order, so a cell's value
    # does not depend on the rectangle
    rows = np.flatnonzero(valid.any(axis=1))
    if rows.size == 0:  # an all-nodata child: nothing to average
        return out
    lo, hi = int(rows[0]) // 2, int(rows[-1]) // 2 + 1
    cols = np.flatnonzero(valid[2 * lo : 2 * hi].any(axis=0))
    left, right = int(cols[0]) // 2, int(cols[-1]) // 2 + 1
    okb = ok[lo:hi, :, left:right]
    v = np.where(okb, c[lo:hi, :, left:right], 0).astype(np.float64)
    n = okb.sum(axis=(1, 3))
    sm = (v[:, 0, :, 0] + v[:, 0, :, 1]) + (v[:, 1, :, 0] + v[:, 1, :, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        out[lo:hi, left:right] = np.where(n > 0, sm / np.maximum(n, 1), np.nan)
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

    Each parent is rebuilt from its four children as they are stored now (the children
    this update just computed are kept in memory; only their siblings are read), so
    repeating an update (replay) writes the same bytes. Returns how many values were
    written.
    """
    layer, native = info.name, info.native_level
    codes = sorted(set(int(m) for m in mortons))
    blocks = store.get_many([encode_key(layer, native, m, ts) for m in codes])
    bys: Sequence[int] = (
        [int(v) for v in morton_decode(np.asarray(codes, np.uint64))[1]] if codes else []
    )
    # the current level's blocks: morton -> (array, statistics), None where not stored
    level_blocks: dict[int, tuple[np.ndarray | None, np.ndarray | None]] = {
        m: (b.array, block_stats(b.array, b.nodata, native, int(by)))
        for m, b, by in zip(codes, blocks, bys, strict=True)
        if b is not None
    }
    written = store.put_many(
        [
            (stats_key(layer, native, m, ts), Block(st[None]))
            for m, (_a, st) in level_blocks.items()
            if st is not None
        ]
    )
    nodata = _coarse_nodata(info)
    touched = [m for m in codes if m in level_blocks]
    for level in range(native - 1, info.top_level - 1, -1):
        parents = sorted({m >> 2 for m in touched})
        siblings = [(p << 2) | q for p in parents for q in range(4)]
        siblings = [c for c in siblings if c not in level_blocks]
        found = store.get_many(
            [encode_key(layer, level + 1, c, ts) for c in siblings]
            + [stats_key(layer, level + 1, c, ts) for c in siblings]
        )
        arrays, stats = found[: len(siblings)], found[len(siblings) :]
        for c, arr, sb in zip(siblings, arrays, stats, strict=True):
            if arr is not None or sb is not None:
                level_blocks[c] = (
                    arr.array if arr is not None else None,
                    sb.array[0] if sb is not None else None,
                )
        out: list[tuple[bytes, Block]] = []
        upper: dict[int, tuple[np.ndarray | None, np.ndarray | None]] = {}
        for p in parents:
            quad = [level_blocks.get((p << 2) | q, (None, None)) for q in range(4)]
            parent = coarsen_children(
                [k[0] for k in quad],
                info.nodata if info.categorical else float("nan"),
                info.categorical,
            )
            if parent is None:
                continue
            st = combine_stats([k[1] for k in quad if k[1] is not None])
            upper[p] = (parent, st)
            out.append((encode_key(layer, level, p, ts), Block(parent, nodata=nodata)))
            out.append((stats_key(layer, level, p, ts), Block(st[None])))
        written += store.put_many(out)
        level_blocks, touched = upper, parents
    return written
