"""Exact ``count, sum, sumsq, min, max`` of a pixel region per time step, from the
overview pyramid where whole blocks allow it and from the pixels only where they must.

A region is a pixel window at a layer's native level (``(x0, y0, x1, y1)`` inclusive,
y grows northwards) and optionally a mask of the window's pixels (row 0 = north, as a
rasterized polygon). Its native blocks fall in three kinds, found by block arithmetic
alone (no key scan, no pixels):

- whole blocks (inside the window and, with a mask, wholly masked in): their statistics
  come from the pyramid, merged up the quadtree (four whole siblings -> their parent,
  Morton code ``m >> 2`` one level up, down to the layer's top level), so a large region
  is a handful of 64-byte statistics reads per time step;
- partial blocks (cut by the window's edge or the mask): their pixels are read (one
  request per block for every time step) and reduced here in float64;
- blocks outside the region are never touched.

Nodata is ignored on both paths (the pyramid's statistics describe the valid native
pixels), so the two parts add up to exactly what a reduction over the region's pixels
gives.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gravitas.kernels.morton import morton_encode
from gravitas.kernels.pixel_stats import masked_stats
from gravitas.schemas.grid import BLOCK_SIZE
from gravitas.storage.blocks import BlockStore
from gravitas.storage.pixels.layers import LayerInfo
from gravitas.storage.pixels.overviews import COUNT, MAX, MIN, SUM, SUMSQ, stats_key
from gravitas.storage.pixels.read import _mosaics

__all__ = ["N_REGION_STATS", "merge_stats", "region_stats", "stat_value"]

N_REGION_STATS = 5
"""``count, sum, sumsq, min, max``."""
_BATCH = 4096


def _empty(times: int) -> np.ndarray:
    out = np.zeros((times, N_REGION_STATS))
    out[:, 3], out[:, 4] = np.inf, -np.inf
    return out


def merge_stats(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Statistics of the union of two disjoint parts (``(..., 5)`` each)."""
    out = a.copy()
    out[..., :3] += b[..., :3]
    out[..., 3] = np.minimum(a[..., 3], b[..., 3])
    out[..., 4] = np.maximum(a[..., 4], b[..., 4])
    return out


def stat_value(reducer: str, s: np.ndarray) -> float:
    """One openEO reducer (``count sum min max mean sd variance``) from the statistics
    (``sd``/``variance`` with n - 1, as openEO and numpy ``ddof=1``)."""
    n, total, sq, lo, hi = (float(v) for v in s)
    if reducer == "count":
        return n
    if reducer == "sum":
        return total
    if n == 0:
        return float("nan")
    if reducer == "min":
        return lo
    if reducer == "max":
        return hi
    if reducer == "mean":
        return total / n
    if n < 2:
        return float("nan")
    var = max(0.0, (sq - total * total / n) / (n - 1))
    return var if reducer == "variance" else float(np.sqrt(var))


def _classify(
    px: tuple[int, int, int, int], mask: np.ndarray | None
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """``(whole, partial)`` native blocks ``(bx, by)`` of the region."""
    x0, y0, x1, y1 = px
    b = BLOCK_SIZE
    whole: list[tuple[int, int]] = []
    partial: list[tuple[int, int]] = []
    for by in range(y0 // b, y1 // b + 1):
        gy0, gy1 = max(y0, by * b), min(y1, by * b + b - 1)
        for bx in range(x0 // b, x1 // b + 1):
            gx0, gx1 = max(x0, bx * b), min(x1, bx * b + b - 1)
            inside = (gx1 - gx0 + 1) == b and (gy1 - gy0 + 1) == b
            if mask is not None:
                sub = mask[y1 - gy1 : y1 - gy0 + 1, gx0 - x0 : gx1 - x0 + 1]
                if not sub.any():
                    continue
                inside = inside and bool(sub.all())
            (whole if inside else partial).append((bx, by))
    return whole, partial


def _quadtree(info: LayerInfo, blocks: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``(level, morton)`` of the coarsest pyramid blocks that tile ``blocks`` exactly."""
    if not blocks:
        return []
    xs, ys = np.array(blocks, np.int64).T
    current = {int(m) for m in morton_encode(xs, ys)}
    out: list[tuple[int, int]] = []
    level = info.native_level
    while level - 1 >= info.top_level and current:
        parents: dict[int, int] = {}
        for m in current:
            parents[m >> 2] = parents.get(m >> 2, 0) + 1
        full = {p for p, n in parents.items() if n == 4}
        out += [(level, m) for m in current if (m >> 2) not in full]
        current, level = full, level - 1
    out += [(level, m) for m in current]
    return out


def _pyramid_part(
    store: BlockStore, info: LayerInfo, tiles: list[tuple[int, int]], times: Sequence[int]
) -> np.ndarray:
    out = _empty(len(times))
    if not tiles:
        return out
    keys = [stats_key(info.name, lvl, m, int(ts)) for ts in times for lvl, m in tiles]
    got: list[np.ndarray] = []
    for start in range(0, len(keys), _BATCH):
        for block in store.get_many(keys[start : start + _BATCH]):
            if block is None:
                got.append(np.array([0.0, 0.0, 0.0, np.inf, -np.inf]))
            else:
                s = np.asarray(block.array, np.float64).reshape(-1)
                got.append(s[[COUNT, SUM, SUMSQ, MIN, MAX]])
    per = np.stack(got).reshape(len(times), len(tiles), N_REGION_STATS)
    out[:, :3] = per[..., :3].sum(axis=1)
    out[:, 3], out[:, 4] = per[..., 3].min(axis=1), per[..., 4].max(axis=1)
    return out


def _pixel_part(
    store: BlockStore,
    info: LayerInfo,
    level: int,
    px: tuple[int, int, int, int],
    mask: np.ndarray | None,
    blocks: list[tuple[int, int]],
    times: Sequence[int],
) -> np.ndarray:
    x0, y0, x1, y1 = px
    b = BLOCK_SIZE
    out = _empty(len(times))
    nodata = info.nodata if info.categorical else None
    for bx, by in blocks:
        gx0, gx1 = max(x0, bx * b), min(x1, bx * b + b - 1)
        gy0, gy1 = max(y0, by * b), min(y1, by * b + b - 1)
        arr = _mosaics(store, info, level, list(times), (gx0, gy0, gx1, gy1))
        sub = None if mask is None else mask[y1 - gy1 : y1 - gy0 + 1, gx0 - x0 : gx1 - x0 + 1]
        part = masked_stats(arr, sub, nodata)
        out = merge_stats(out, part)
    return out


def region_stats(
    store: BlockStore,
    info: LayerInfo,
    px: tuple[int, int, int, int],
    times: Sequence[int],
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """``((time, 5) statistics, whole native blocks served from the pyramid)`` of the
    region ``px`` (native level, inclusive) masked by ``mask`` (``(y, x)``, row 0 north;
    None = every pixel)."""
    x0, y0, x1, y1 = px
    if mask is not None and mask.shape != (y1 - y0 + 1, x1 - x0 + 1):
        raise ValueError(f"mask of shape {mask.shape} does not fit the window {px}")
    whole, partial = _classify(px, mask)
    stats = _pyramid_part(store, info, _quadtree(info, whole), times)
    if partial:
        edge = _pixel_part(store, info, info.native_level, px, mask, partial, times)
        stats = merge_stats(stats, edge)
    return stats, len(whole)
