"""Staged scene blocks, and their merge into the layer's blocks by the single writer.

An indexing step (ingest, onboarding, methane) never writes a layer's blocks itself: it
writes each scene's blocks under the scene's own staging key space
(:func:`staged_layer`), which no other scene touches, and announces them on
``pixels.indexed``. The overview agent, which owns every block of a pyramid through the
event's partition key, merges them into the layer's blocks and rebuilds the pyramid.

The merge is order-free: where two scenes of one layer and time both hold a valid pixel
the block keeps the larger value (for categories: the larger class code); a pixel valid
in one scene only takes that value. It is commutative, associative and idempotent, so
the final bytes are the same whatever order scenes arrive in and however often an event
is replayed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gravitas.storage.blocks import Block, BlockStore
from gravitas.storage.keys import encode_key
from gravitas.storage.pixels.overviews import valid_mask

__all__ = ["merge_blocks", "merge_staged", "staged_key", "staged_layer"]


def staged_layer(scene_id: str, layer: str) -> str:
    """The key space of one scene's staged blocks of ``layer``."""
    return f"staged:{scene_id}:{layer}"


def staged_key(scene_id: str, layer: str, level: int, morton: int, ts: int) -> bytes:
    """Key of one staged block."""
    return encode_key(staged_layer(scene_id, layer), level, morton, ts)


def merge_blocks(new: Block, old: Block | None) -> Block:
    """The merge of two blocks of one key (see the module doc); ``old`` of another
    shape or dtype is replaced."""
    if old is None or old.array.shape != new.array.shape or old.array.dtype != new.array.dtype:
        return new
    a, b = new.array, old.array
    va, vb = valid_mask(a, new.nodata), valid_mask(b, old.nodata)
    if not vb.any():
        return new
    both = va & vb
    out = np.where(va, a, b)
    if both.any():
        out = np.where(both, np.maximum(a, b), out)
    return Block(out, nodata=new.nodata)


def merge_staged(
    store: BlockStore, layer: str, scene_id: str, level: int, ts: int, mortons: Sequence[int]
) -> int:
    """Merge a scene's staged blocks into the layer's, then drop the staged copies.

    Only the owner of the blocks' pyramid may call this. Staged blocks already merged
    (a replay after the drop) are skipped. A staged block whose layer block does not
    exist yet is copied as stored bytes (the merge would return it unchanged, and the
    codec is deterministic: the same bytes, without a decode and an encode). Returns how
    many blocks were written."""
    codes = sorted(set(int(m) for m in mortons))
    if not codes:
        return 0
    keys = [encode_key(layer, level, m, ts) for m in codes]
    staged_keys = [staged_key(scene_id, layer, level, m, ts) for m in codes]
    olds = store.get_many(keys)
    fresh = [(s, k) for s, k, old in zip(staged_keys, keys, olds, strict=True) if old is None]
    written = store.copy_raw_many(fresh)
    both = [
        (s, k, old) for s, k, old in zip(staged_keys, keys, olds, strict=True) if old is not None
    ]
    if both:
        staged = store.get_many([s for s, _k, _o in both])
        written += store.put_many(
            (k, merge_blocks(new, old))
            for (_s, k, old), new in zip(both, staged, strict=True)
            if new is not None
        )
    for s in staged_keys:
        store.delete(s)
    return written
