"""``plume-patches@1.0.0``: a datacube of plume patches from the survey's scene products.

For every scene product of ``methane-scan`` (a STAC item of this node's catalog in the
survey collection, never a location the inputs give) it reads the methane enhancement
and the plume labels the scan stored under its step id, cuts one square patch around
each plume (centred on the plume's pixels, moved inside the scene at its edges) with the
datacube kernels that cut the harmonize agent's patches (:mod:`gravitas.kernels.datacube`:
valid fractions, patch and label cutting, the stratified split), and writes the patches
as a Zarr v2 datacube with the harmonize agent's writer
(:func:`gravitas.agents.datacube.zarr_v2.write_zarr`) under a key named by the step id (a
replay writes the same bytes). The cube is registered in STAC (datacube extension) with
the step's provenance, derived from every scene product.

Variables, per patch: ``ch4_enhancement`` (ppm m, NaN = no data), ``label`` (the plume
mask: 1 plume, 0 background), ``label_majority``, ``split`` (0 train, 1 val, 2 test),
``valid_fraction``, ``plume`` (the plume's label in its scene), ``scene`` (index into the
``scenes`` attribute), ``row``/``col`` (the patch's top-left pixel in its scene), and the
coordinates ``time``, ``lat`` and ``lon`` (pixel centres).
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gravitas.agents.modules.context import ModuleContext
from gravitas.agents.modules.declare import builtin
from gravitas.agents.modules.errors import ModuleError
from gravitas.agents.modules.provenance import NODE, STEP_ID, publish_item
from gravitas.agents.modules.survey import MASK_FILE, PRODUCTS

__all__ = ["MODULE", "ZARR", "ScenePatches", "run", "scene_patches"]

ZARR = "plume_patches.zarr"
_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$"
SPLIT_SEED_MAX = 2**31 - 1

MODULE = builtin(
    "plume-patches",
    "A datacube of plume patches: one patch around each plume of the survey's scene "
    "products (methane enhancement, plume mask as label, train/val/test split), written "
    "as Zarr and registered in STAC with the step's provenance.",
    kind="python",
    target="gravitas.agents.modules.plume_patches:run",
    inputs={
        "item_ids": {
            "type": "array",
            "items": {"type": "string", "pattern": _ID},
            "minItems": 1,
            "maxItems": 1000,
            "uniqueItems": True,
        },
        "patch_size": {"type": "integer", "minimum": 8, "maximum": 512, "default": 32},
        "seed": {"type": "integer", "minimum": 0, "maximum": SPLIT_SEED_MAX, "default": 0},
        "title": {"type": "string", "maxLength": 200, "default": "methane plume patches"},
    },
    required=["item_ids"],
    outputs={
        "item_id": {"type": "string"},
        "zarr_href": {"type": "string"},
        "patches": {"type": "integer"},
        "patch_size": {"type": "integer"},
        "plume_pixels": {"type": "integer"},
        "split_counts": {"type": "object"},
    },
)


class ScenePatches:
    """The patches of one scene product."""

    def __init__(
        self,
        enhancement: NDArray[np.float32],
        labels: NDArray[np.int64],
        transform: tuple[float, ...],
        patch_size: int,
        scene: str,
    ) -> None:
        from gravitas.kernels.datacube import cut_patches, label_patches, valid_fractions

        p = patch_size
        rows, cols = enhancement.shape
        if labels.shape != enhancement.shape:
            raise ModuleError(
                f"scene product {scene!r}: plume mask {labels.shape} and enhancement "
                f"{enhancement.shape} differ in shape"
            )
        if rows < p or cols < p:
            raise ModuleError(
                f"patch_size {p} is larger than scene product {scene!r} ({rows} x {cols} "
                "pixels); use a smaller patch_size"
            )
        self.plumes = np.unique(labels[labels > 0]).astype(np.int64)
        origins = np.zeros((self.plumes.size, 2), np.int64)
        for i, k in enumerate(self.plumes):
            r, c = np.nonzero(labels == k)
            origins[i] = (
                min(max(round(float(r.mean())) - p // 2, 0), rows - p),
                min(max(round(float(c.mean())) - p // 2, 0), cols - p),
            )
        self.origins = origins
        mask = (labels > 0).astype(np.uint8)
        self.data = np.asarray(cut_patches(enhancement, origins, p), np.float32)
        majority, tiles = label_patches(mask, origins, p, nodata=255)
        self.label = np.asarray(tiles, np.uint8)
        self.majority = np.asarray(majority, np.uint8)
        self.valid = np.asarray(valid_fractions(enhancement, origins, p), np.float64)
        a, _b, c0, _d, e, f0 = transform[:6]
        self.lon = c0 + (origins[:, 1:2] + np.arange(p) + 0.5) * a
        self.lat = f0 + (origins[:, 0:1] + np.arange(p) + 0.5) * e
        self.half_pixel = (abs(a) / 2, abs(e) / 2)


def _read(data: bytes) -> tuple[NDArray[Any], tuple[float, ...]]:
    import rasterio

    with rasterio.MemoryFile(io.BytesIO(data)) as mem, mem.open() as src:
        t = src.transform
        return src.read(1), (t.a, t.b, t.c, t.d, t.e, t.f)


def scene_patches(ctx: ModuleContext, item_id: str, patch_size: int) -> tuple[ScenePatches, str]:
    """The patches of one scene product of this node's catalog, and its datetime."""
    from gravitas.storage.catalog.base import NODE_PROPERTY
    from gravitas.storage.catalog.errors import ItemNotFoundError

    assert ctx.services is not None
    try:
        item = ctx.services.catalog.get_item(PRODUCTS, item_id)
    except ItemNotFoundError:
        raise ModuleError(
            f"scene product {PRODUCTS}/{item_id} is not in node {ctx.node_id}'s catalog"
        ) from None
    props = item.get("properties") or {}
    owner = str(props.get(NODE_PROPERTY) or props.get(NODE) or ctx.node_id)
    step = str(props.get(STEP_ID) or "")
    if owner != ctx.node_id or not re.match(_ID, step) or "plume_mask" not in item["assets"]:
        raise ModuleError(
            f"{PRODUCTS}/{item_id} is not a methane-scan product made on node {ctx.node_id} "
            f"(made on {owner!r}); run plume-patches where the scan ran"
        )
    store = ctx.services.object_store
    enh_raw = store.get_bytes(f"workflows/{step}/ch4_enhancement.tif")
    mask_raw = store.get_bytes(f"workflows/{step}/{MASK_FILE}")
    ctx.read_bytes.append(len(enh_raw) + len(mask_raw))
    enhancement, transform = _read(enh_raw)
    labels, _ = _read(mask_raw)
    patches = ScenePatches(
        np.asarray(enhancement, np.float32),
        np.asarray(labels, np.int64),
        transform,
        patch_size,
        item_id,
    )
    return patches, str(props.get("datetime"))


def _dataset(
    scenes: list[tuple[str, ScenePatches, str]], split: NDArray[np.int64], title: str
) -> Any:
    import xarray as xr

    n_of = [sp.origins.shape[0] for _, sp, _ in scenes]
    cat = lambda f: np.concatenate([f(sp) for _, sp, _ in scenes])  # noqa: E731
    times = np.concatenate(
        [
            np.full(
                n,
                np.datetime64(
                    datetime.fromisoformat(t.replace("Z", "+00:00")).replace(tzinfo=None), "ns"
                ),
            )
            for n, (_, _, t) in zip(n_of, scenes, strict=True)
        ]
    )
    scene_idx = np.concatenate([np.full(n, i, np.int32) for i, n in enumerate(n_of)])
    return xr.Dataset(
        {
            "ch4_enhancement": (("patch", "y", "x"), cat(lambda s: s.data),
                                {"long_name": "methane enhancement", "units": "ppm m"}),
            "label": (("patch", "y", "x"), cat(lambda s: s.label),
                      {"long_name": "plume mask", "flag_values": [0, 1],
                       "flag_meanings": "background plume"}),
            "label_majority": (("patch",), cat(lambda s: s.majority)),
            "split": (("patch",), split.astype(np.int8),
                      {"flag_values": [0, 1, 2], "flag_meanings": "train val test"}),
            "valid_fraction": (("patch",), cat(lambda s: s.valid)),
            "plume": (("patch",), cat(lambda s: s.plumes).astype(np.int32)),
            "scene": (("patch",), scene_idx),
            "row": (("patch",), cat(lambda s: s.origins[:, 0]).astype(np.int32)),
            "col": (("patch",), cat(lambda s: s.origins[:, 1]).astype(np.int32)),
        },
        coords={
            "time": (("patch",), times),
            "lat": (("patch", "y"), cat(lambda s: s.lat)),
            "lon": (("patch", "x"), cat(lambda s: s.lon)),
        },
        attrs={"title": title, "scenes": json.dumps([i for i, _, _ in scenes])},
    )  # fmt: skip


def run(inputs: dict[str, Any], ctx: ModuleContext) -> dict[str, Any]:
    """The module function."""
    import pystac

    from gravitas.agents.datacube.zarr_v2 import write_zarr
    from gravitas.kernels.datacube import stratified_split
    from gravitas.kernels.datacube.split import SPLITS
    from gravitas.storage.catalog.derived import add_datacube

    if ctx.services is None:
        raise ModuleError("plume-patches needs a node (its catalog and object store)")
    p = int(inputs.get("patch_size", 32))
    ids = [str(i) for i in inputs["item_ids"]]
    scenes = [(i, *scene_patches(ctx, i, p)) for i in ids]
    with_plumes = [s for s in scenes if s[1].origins.shape[0]]
    if not with_plumes:
        raise ModuleError(f"no plumes in scene products {ids}: nothing to cut patches around")
    majority = np.concatenate([sp.majority for _, sp, _ in with_plumes]).astype(np.int64)
    split = stratified_split(majority, seed=int(inputs.get("seed", 0)))
    ds = _dataset(with_plumes, split.assignment, str(inputs.get("title", "")))
    store = ctx.services.object_store
    prefix = f"workflows/{ctx.step_id}/{ZARR}"
    with tempfile.TemporaryDirectory(prefix="gravitas-patches-") as tmp:
        root = Path(tmp) / ZARR
        write_zarr(ds, root)
        for f in sorted(root.rglob("*")):
            if f.is_file():
                store.put_file(f"{prefix}/{f.relative_to(root).as_posix()}", f)
    lon, lat = ds["lon"].values, ds["lat"].values
    hx, hy = with_plumes[0][1].half_pixel
    w, e = float(lon.min()) - hx, float(lon.max()) + hx
    s, n = float(lat.min()) - hy, float(lat.max()) + hy
    times = sorted(t for _, _, t in with_plumes)
    counts = {name: int(split.counts.get(name, 0)) for name in SPLITS}
    total = int(ds["label"].values.astype(np.int64).sum())
    item = pystac.Item.from_dict({
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "id": f"plume-patches-{ctx.run_id or ctx.step_id}"[:200],
        "collection": PRODUCTS,
        "bbox": [w, s, e, n],
        "geometry": {"type": "Polygon",
                     "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        "properties": {
            "title": str(inputs.get("title", "")),
            "datetime": None,
            "start_datetime": times[0],
            "end_datetime": times[-1],
            "methane:patches": int(ds.sizes["patch"]),
            "methane:patch_size": p,
            "methane:plume_pixels": total,
            "gravitas:split_counts": counts,
        },
        "links": [],
        "assets": {"data": {"href": store.href(prefix), "type": "application/vnd+zarr",
                            "roles": ["data"], "title": "plume patches (Zarr v2)"}},
    })  # fmt: skip
    add_datacube(
        item,
        {
            "patch": {"type": "other", "extent": [0, int(ds.sizes["patch"]) - 1]},
            "y": {"type": "spatial", "axis": "y", "extent": [s, n]},
            "x": {"type": "spatial", "axis": "x", "extent": [w, e]},
        },
        {
            "ch4_enhancement": {"type": "data", "dimensions": ["patch", "y", "x"],
                                "unit": "ppm m"},
            "label": {"type": "data", "dimensions": ["patch", "y", "x"],
                      "description": "plume mask: 1 plume, 0 background"},
        },
    )  # fmt: skip
    published = publish_item(
        ctx, item.to_dict(include_self_link=False), [(PRODUCTS, i) for i in ids]
    )
    return {
        "item_id": str(published["id"]),
        "zarr_href": store.href(prefix),
        "patches": int(ds.sizes["patch"]),
        "patch_size": p,
        "plume_pixels": total,
        "split_counts": counts,
    }
