"""Index scene files: read, mask, warp every band once, then write all blocks at the end.

Nothing is written until every file of the scene has been read and warped, so a
corrupt band leaves the store as it was. Blocks are written to the scene's staging key
space (:mod:`gravitas.storage.pixels.merge`): the overview agent, the single writer of
each pyramid, merges them into the layer's blocks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from gravitas.kernels.morton import morton_encode
from gravitas.schemas.errors import InputError
from gravitas.storage.blocks import Block, BlockStore
from gravitas.storage.keys import to_epoch
from gravitas.storage.pixels.layers import LayerRegistry
from gravitas.storage.pixels.merge import staged_key
from gravitas.storage.pixels.sources import (
    SourceRaster,
    apply_mask,
    detect_format,
    guess_datetime,
    read_rasters,
)
from gravitas.storage.pixels.warp import WarpedRaster, native_level_of, warp_many

__all__ = ["FamilyWrite", "ScenePlan", "WarpedLayer", "layer_name", "prepare_scene", "write_scene"]

ProgressFn = Callable[[str, float], None]


def _quiet(_msg: str, _fraction: float) -> None:
    """Default progress sink."""


@dataclass(frozen=True)
class WarpedLayer:
    """One layer at one timestamp, warped and ready to write."""

    layer: str
    timestamp: int
    """Epoch seconds."""
    categorical: bool
    warped: WarpedRaster


@dataclass
class ScenePlan:
    """Everything a scene will write, computed before any write."""

    scene_id: str
    collection: str
    layers: list[WarpedLayer] = field(default_factory=list)

    @property
    def pixels(self) -> int:
        """Grid pixels in the warped windows (valid or not)."""
        return sum(w.warped.array.size for w in self.layers)


@dataclass(frozen=True)
class FamilyWrite:
    """Blocks of one layer/level/time that share a parent block (families under one
    top-level ancestor travel in one ``BlocksIndexed``)."""

    layer: str
    level: int
    timestamp: int
    mortons: list[int]
    valid_pixels: int


def layer_name(prefix: str, band: str, single: bool) -> str:
    """``prefix`` alone for a single-band scene, else ``prefix_band`` (lowercase)."""
    name = prefix if single else f"{prefix}_{band}"
    name = name.lower()
    if len(name) > 100:
        raise InputError(
            f"layer name {name!r} is longer than 100 characters; give a shorter layer="
        )
    return name


def prepare_scene(
    scene_id: str,
    collection: str,
    paths: Sequence[Path],
    *,
    fmt: str = "auto",
    layer: str | None = None,
    bands: Sequence[str] | None = None,
    categorical: bool = False,
    mask_path: Path | None = None,
    when: datetime | None = None,
    level: int | None = None,
    progress: ProgressFn = _quiet,
    band_names: Sequence[str] | None = None,
    nodata: float | None = None,
    mask_convention: str = "fmask",
    band_nodata: Sequence[float | None] | None = None,
) -> ScenePlan:
    """Read and warp every band of a scene (no writes). Raises InputError subclasses.

    Every band becomes its own layer ``<layer>_<band>`` (a scene of one band: ``layer``);
    two bands that would land in the same layer are refused, never overwritten. Mask,
    QA and label bands are categorical (nearest resampling, their classes kept); the
    mask (``mask_path`` under ``mask_convention``) blanks the other bands' pixels."""
    rasters: list[SourceRaster] = []
    for i, path in enumerate(paths):
        progress(f"reading {path.name}", i / max(len(paths), 1) / 2)
        band = band_names[i] if band_names else None
        fill = band_nodata[i] if band_nodata and band_nodata[i] is not None else nodata
        rasters.extend(
            read_rasters(path, detect_format(path, fmt), categorical, band=band, nodata=fill)
        )
    if bands:
        wanted = {b.lower() for b in bands}
        rasters = [r for r in rasters if r.band in wanted]
        if not rasters:
            raise InputError(f"scene {scene_id}: none of the bands {sorted(wanted)} was found")
    if mask_path is not None:
        from gravitas.storage.pixels.sources import _read_gdal

        mask = _read_gdal(mask_path, categorical=True)[0].array
        apply_mask(rasters, mask, str(mask_path), mask_convention)
    fallback = (
        when or guess_datetime(scene_id) or (guess_datetime(paths[0].name) if paths else None)
    )
    single = len({r.band for r in rasters}) == 1
    prefix = layer or collection.replace(":", "_")
    plan = ScenePlan(scene_id, collection)
    stamps = []
    for r in rasters:
        ts = r.timestamp or fallback
        if ts is None:
            raise InputError(
                f"{r.href}: no time in the file, its name or the event; give it with "
                "`gravitas ingest --datetime 2020-01-14T10:00:00Z` (datetime= on the "
                "SceneAnnounced event)"
            )
        stamps.append(ts)
    names = [layer_name(prefix, r.band, single) for r in rasters]
    seen: dict[tuple[str, int], str] = {}
    for name, r, ts in zip(names, rasters, stamps, strict=True):
        where = f"{r.href} ({r.band})"
        key = (name, to_epoch(ts))
        if key in seen:
            raise InputError(
                f"scene {scene_id}: {where} and {seen[key]} would both be layer {name!r} at "
                f"{ts.isoformat()}; give each file its own band name (band_names=) or ingest "
                "them as separate layers"
            )
        seen[key] = where
    levels = [level or native_level_of(r) for r in rasters]
    progress(f"warping {len(rasters)} band(s)", 0.5)
    warped: list[WarpedRaster | None] = [None] * len(rasters)
    for cat in (False, True):
        idx = [i for i, r in enumerate(rasters) if r.categorical == cat]
        if idx:
            done = warp_many([rasters[i] for i in idx], [levels[i] for i in idx], cat)
            for i, w in zip(idx, done, strict=True):
                warped[i] = w
    for i, r in enumerate(rasters):
        done_w = warped[i]
        assert done_w is not None
        plan.layers.append(WarpedLayer(names[i], to_epoch(stamps[i]), r.categorical, done_w))
    return plan


def _blocks(
    w: WarpedRaster,
    counts: np.ndarray,
    cells: list[tuple[int, int]],
    mortons: list[int],
    keys: list[bytes],
    groups: dict[int, list[tuple[int, int]]],
) -> Iterator[tuple[bytes, Block]]:
    """The staged blocks to write; fills ``groups`` (parent -> ``(morton, valid
    pixels)``) as it goes. Blocks are views into the warped window (no copies): the
    store encodes them while this generator produces the next."""
    for (r, c), m, key in zip(cells, mortons, keys, strict=True):
        groups[m >> 2].append((m, int(counts[r, c])))
        yield key, Block(w.block_view(r, c), nodata=w.nodata)


def write_scene(
    store: BlockStore, registry: LayerRegistry, plan: ScenePlan, progress: ProgressFn = _quiet
) -> list[FamilyWrite]:
    """Stage every block of a prepared scene, record the layers, return the families
    (the overview agent merges them: :func:`gravitas.storage.pixels.merge.merge_staged`)."""
    families: list[FamilyWrite] = []
    for i, wl in enumerate(plan.layers):
        w = wl.warped
        counts = w.block_counts()
        cells = [(int(r), int(c)) for r, c in zip(*np.nonzero(counts), strict=True)]
        mortons = [int(morton_encode(w.bx0 + c, w.by1 - r)) for r, c in cells]
        keys = [staged_key(plan.scene_id, wl.layer, w.level, m, wl.timestamp) for m in mortons]
        groups: dict[int, list[tuple[int, int]]] = defaultdict(list)

        written = store.put_many(_blocks(w, counts, cells, mortons, keys, groups))
        registry.record(
            wl.layer,
            dtype=str(w.array.dtype),
            nodata=w.nodata,
            native_level=w.level,
            categorical=wl.categorical,
            timestamp=wl.timestamp,
            scene_id=plan.scene_id,
            blocks=written,
            collection=plan.collection,
        )
        for members in groups.values():
            families.append(
                FamilyWrite(
                    wl.layer,
                    w.level,
                    wl.timestamp,
                    sorted(m for m, _ in members),
                    sum(v for _, v in members),
                )
            )
        progress(f"wrote {wl.layer}", (i + 1) / len(plan.layers))
    return families
