"""A datacube of plume patches from the methane survey's scene products, in two steps.

- ``plume-patches@1.0.0`` (one instance per scene product, placed where the product is):
  reads the methane enhancement and the plume labels the scan stored under its step id
  (the product is a STAC item of this node's catalog, never a location the inputs give)
  and cuts one square patch around each plume (centred on the plume's pixels, moved
  inside the scene at its edges) with the datacube kernels that cut the harmonize
  agent's patches (:mod:`gravitas.kernels.datacube`: valid fractions, patch and label
  cutting). Its answer carries the patches (zlib-compressed, base64): only they move
  between nodes, never the radiance or the enhancement.
- ``plume-cube@1.0.0``: the patches of every scene -> a train/val/test split (the
  kernels' stratified split) and one Zarr v2 datacube written with the harmonize agent's
  writer (:func:`gravitas.agents.datacube.zarr_v2.write_zarr`) under a key named by the
  step id (a replay writes the same bytes), registered in STAC (datacube extension)
  with the step's provenance, derived from every scene product.

Variables, per patch: ``ch4_enhancement`` (ppm m, NaN = no data), ``label`` (the plume
mask: 1 plume, 0 background), ``label_majority``, ``split`` (0 train, 1 val, 2 test),
``valid_fraction``, ``plume`` (the plume's label in its scene), ``scene`` (index into the
``scenes`` attribute), ``row``/``col`` (the patch's top-left pixel in its scene), and the
coordinates ``time``, ``lat`` and ``lon`` (pixel centres).
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import tempfile
import zlib
from dataclasses import dataclass
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

__all__ = ["CUBE", "MODULE", "ZARR", "Cut", "cube", "cut_scene", "decode_cut", "run"]

ZARR = "plume_patches.zarr"
_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$"
MAX_PATCH = 128
MAX_CUT_BYTES = 4 * 1024 * 1024
"""Largest uncompressed patch array one scene's answer may carry (enhancement)."""
SEED_MAX = 2**31 - 1

MODULE = builtin(
    "plume-patches",
    "One square patch around each plume of a methane-scan scene product (methane "
    "enhancement, plume mask as label), cut where the product is; only the patches move.",
    kind="python",
    target="gravitas.agents.modules.plume_patches:run",
    inputs={
        "product": {
            "type": "object",
            "properties": {
                "collection": {"type": "string", "const": PRODUCTS},
                "item_id": {"type": "string", "pattern": _ID},
            },
            "required": ["collection", "item_id"],
        },
        "patch_size": {"type": "integer", "minimum": 8, "maximum": MAX_PATCH, "default": 32},
    },
    required=["product"],
    outputs={"cut": {"type": "object"}, "count": {"type": "integer"}},
)

CUBE = builtin(
    "plume-cube",
    "The plume patches of every scene as one datacube (train/val/test split), written as "
    "Zarr and registered in STAC with the step's provenance, derived from every scene "
    "product.",
    kind="python",
    target="gravitas.agents.modules.plume_patches:cube",
    inputs={
        "cuts": {"type": "array", "items": {"type": "object"}, "minItems": 1, "maxItems": 1000},
        "seed": {"type": "integer", "minimum": 0, "maximum": SEED_MAX, "default": 0},
        "title": {"type": "string", "maxLength": 200, "default": "methane plume patches"},
    },
    required=["cuts"],
    outputs={
        "item_id": {"type": "string"},
        "zarr_href": {"type": "string"},
        "patches": {"type": "integer"},
        "patch_size": {"type": "integer"},
        "plume_pixels": {"type": "integer"},
        "split_counts": {"type": "object"},
    },
)


@dataclass(frozen=True)
class Cut:
    """The patches of one scene product."""

    scene: str
    """The scene product's item id (collection ``methane-survey``)."""
    patch_size: int
    plumes: NDArray[np.int64]
    origins: NDArray[np.int64]
    """(n, 2) top-left ``(row, col)`` in the scene."""
    transform: tuple[float, ...]
    """GDAL-ordered affine of the scene's grid (a, b, c, d, e, f as rasterio's)."""
    data: NDArray[np.float32]
    """(n, p, p) enhancement."""
    label: NDArray[np.uint8]
    """(n, p, p) plume mask."""

    @property
    def count(self) -> int:
        return int(self.origins.shape[0])


def _pack(a: NDArray[Any]) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(a).tobytes(), 6)).decode()


def _unpack(text: Any, dtype: type, shape: tuple[int, ...], what: str) -> NDArray[Any]:
    want = int(np.prod(shape)) * np.dtype(dtype).itemsize
    try:
        raw = base64.b64decode(str(text), validate=True)
        inflate = zlib.decompressobj()
        data = inflate.decompress(raw, want + 1)  # never more than the shape needs
    except (ValueError, zlib.error) as exc:
        raise ModuleError(f"{what} is not a packed patch array ({exc})") from None
    if len(data) != want or inflate.unconsumed_tail:
        raise ModuleError(f"{what} does not hold {shape} {np.dtype(dtype).name} values")
    return np.frombuffer(data, dtype).reshape(shape)


def cut_patches_of(
    scene: str,
    enhancement: NDArray[np.float32],
    labels: NDArray[np.int64],
    transform: tuple[float, ...],
    p: int,
) -> Cut:
    """One patch of ``p`` pixels around each plume of a scene (the datacube kernels)."""
    from gravitas.kernels.datacube import cut_patches, label_patches

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
    plumes = np.unique(labels[labels > 0]).astype(np.int64)
    origins = np.zeros((plumes.size, 2), np.int64)
    for i, k in enumerate(plumes):
        r, c = np.nonzero(labels == k)
        origins[i] = (
            min(max(round(float(r.mean())) - p // 2, 0), rows - p),
            min(max(round(float(c.mean())) - p // 2, 0), cols - p),
        )
    _, tiles = label_patches((labels > 0).astype(np.uint8), origins, p, nodata=255)
    return Cut(
        scene,
        p,
        plumes,
        origins,
        transform,
        np.asarray(cut_patches(enhancement, origins, p), np.float32),
        np.asarray(tiles, np.uint8),
    )


def encode_cut(cut: Cut) -> dict[str, Any]:
    """A cut as a step output (JSON)."""
    return {
        "scene": cut.scene,
        "patch_size": cut.patch_size,
        "plumes": cut.plumes.tolist(),
        "origins": cut.origins.tolist(),
        "transform": list(cut.transform),
        "enhancement": _pack(cut.data.astype("<f4")),
        "label": _pack(cut.label),
    }


def decode_cut(value: Any, where: str) -> Cut:
    """A cut from a step's inputs, checked (shapes, sizes, numbers), naming ``where``."""
    if not isinstance(value, dict):
        raise ModuleError(f"{where} must be a plume-patches cut (an object)")
    scene = value.get("scene")
    if not isinstance(scene, str) or not re.match(_ID, scene):
        raise ModuleError(f"{where}.scene {scene!r} is not a scene product id")
    p = value.get("patch_size")
    if not isinstance(p, int) or not 8 <= p <= MAX_PATCH:
        raise ModuleError(f"{where}.patch_size {p!r} must be an integer in 8..{MAX_PATCH}")
    try:
        plumes = np.asarray(value.get("plumes"), np.int64).reshape(-1)
        origins = np.asarray(value.get("origins"), np.int64).reshape(-1, 2)
        transform = tuple(float(v) for v in value.get("transform") or ())
    except (TypeError, ValueError) as exc:
        raise ModuleError(
            f"{where}: plumes, origins or transform are not numbers ({exc})"
        ) from None
    n = origins.shape[0]
    if plumes.size != n or len(transform) != 6 or not all(map(math.isfinite, transform)):
        raise ModuleError(
            f"{where}: {plumes.size} plumes, {n} origins and a transform of "
            f"{len(transform)} finite numbers do not describe one patch per plume"
        )
    if n * p * p * 4 > MAX_CUT_BYTES or (origins < 0).any():
        raise ModuleError(f"{where}: {n} patches of {p} px exceed {MAX_CUT_BYTES} bytes")
    where_e = f"{where}.enhancement"
    data = _unpack(value.get("enhancement"), np.dtype("<f4").type, (n, p, p), where_e)
    label = _unpack(value.get("label"), np.uint8, (n, p, p), f"{where}.label")
    if not np.isin(label, (0, 1)).all():
        raise ModuleError(f"{where}.label must hold 0 (background) and 1 (plume) only")
    return Cut(scene, p, plumes, origins, transform, data.astype(np.float32), label)


def _read(data: bytes) -> tuple[NDArray[Any], tuple[float, ...]]:
    import rasterio

    with rasterio.MemoryFile(io.BytesIO(data)) as mem, mem.open() as src:
        t = src.transform
        return src.read(1), (t.a, t.b, t.c, t.d, t.e, t.f)


def cut_scene(ctx: ModuleContext, item_id: str, patch_size: int) -> Cut:
    """The patches of one scene product this node made (read from its object store)."""
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
            f"(made on {owner!r}); plume-patches runs where the scan ran"
        )
    store = ctx.services.object_store
    enh_raw = store.get_bytes(f"workflows/{step}/ch4_enhancement.tif")
    mask_raw = store.get_bytes(f"workflows/{step}/{MASK_FILE}")
    ctx.read_bytes.append(len(enh_raw) + len(mask_raw))
    enhancement, transform = _read(enh_raw)
    labels, _ = _read(mask_raw)
    return cut_patches_of(
        item_id, np.asarray(enhancement, np.float32), np.asarray(labels, np.int64),
        transform, patch_size,
    )  # fmt: skip


def run(inputs: dict[str, Any], ctx: ModuleContext) -> dict[str, Any]:
    """``plume-patches``: the patches of one scene product."""
    if ctx.services is None:
        raise ModuleError("plume-patches needs a node (its catalog and object store)")
    cut = cut_scene(ctx, str(inputs["product"]["item_id"]), int(inputs.get("patch_size", 32)))
    return {"cut": encode_cut(cut), "count": cut.count}


def _per_patch(cuts: list[tuple[Cut, str]]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Majority class and valid fraction of every patch (the datacube kernels)."""
    from gravitas.kernels.datacube import label_patches, valid_fractions

    p = cuts[0][0].patch_size
    whole = np.zeros((1, 2), np.int64)
    majority = [label_patches(t, whole, p, nodata=255)[0][0] for c, _ in cuts for t in c.label]
    valid = [valid_fractions(d, whole, p)[0] for c, _ in cuts for d in c.data]
    return np.asarray(majority, np.int64), np.asarray(valid, np.float64)


def _dataset(cuts: list[tuple[Cut, str]], split: NDArray[np.int64], title: str) -> Any:
    import xarray as xr

    p = cuts[0][0].patch_size
    cat = lambda f: np.concatenate([f(c) for c, _ in cuts])  # noqa: E731
    times = np.concatenate(
        [
            np.full(
                c.count,
                np.datetime64(
                    datetime.fromisoformat(t.replace("Z", "+00:00")).replace(tzinfo=None), "ns"
                ),
            )
            for c, t in cuts
        ]
    )
    lon = cat(lambda c: c.transform[2] + (c.origins[:, 1:2] + np.arange(p) + 0.5) * c.transform[0])
    lat = cat(lambda c: c.transform[5] + (c.origins[:, 0:1] + np.arange(p) + 0.5) * c.transform[4])
    data = cat(lambda c: c.data)
    label = cat(lambda c: c.label)
    majority, valid = _per_patch(cuts)
    return xr.Dataset(
        {
            "ch4_enhancement": (("patch", "y", "x"), data,
                                {"long_name": "methane enhancement", "units": "ppm m"}),
            "label": (("patch", "y", "x"), label,
                      {"long_name": "plume mask", "flag_values": [0, 1],
                       "flag_meanings": "background plume"}),
            "label_majority": (("patch",), majority.astype(np.uint8)),
            "split": (("patch",), split.astype(np.int8),
                      {"flag_values": [0, 1, 2], "flag_meanings": "train val test"}),
            "valid_fraction": (("patch",), valid),
            "plume": (("patch",), cat(lambda c: c.plumes).astype(np.int32)),
            "scene": (("patch",), np.concatenate(
                [np.full(c.count, i, np.int32) for i, (c, _) in enumerate(cuts)])),
            "row": (("patch",), cat(lambda c: c.origins[:, 0]).astype(np.int32)),
            "col": (("patch",), cat(lambda c: c.origins[:, 1]).astype(np.int32)),
        },
        coords={"time": (("patch",), times), "lat": (("patch", "y"), lat),
                "lon": (("patch", "x"), lon)},
        attrs={"title": title, "scenes": json.dumps([c.scene for c, _ in cuts])},
    )  # fmt: skip


def _scene_time(ctx: ModuleContext, scene: str, where: str) -> str:
    """The datetime of a scene product in this node's (federated) catalog."""
    from gravitas.storage.catalog.errors import ItemNotFoundError

    assert ctx.services is not None
    try:
        item = ctx.services.catalog.get_item(PRODUCTS, scene)
    except ItemNotFoundError:
        raise ModuleError(
            f"{where}.scene: {PRODUCTS}/{scene} is not in node {ctx.node_id}'s catalog"
        ) from None
    return str((item.get("properties") or {}).get("datetime"))


def cube(inputs: dict[str, Any], ctx: ModuleContext) -> dict[str, Any]:
    """``plume-cube``: every scene's patches as one datacube, published in STAC."""
    import pystac

    from gravitas.agents.datacube.zarr_v2 import write_zarr
    from gravitas.kernels.datacube import stratified_split
    from gravitas.kernels.datacube.split import SPLITS
    from gravitas.storage.catalog.derived import add_datacube

    if ctx.services is None:
        raise ModuleError("plume-cube needs a node (its catalog and object store)")
    decoded = [decode_cut(v, f"cuts.{i}") for i, v in enumerate(inputs["cuts"])]
    sizes = {c.patch_size for c in decoded}
    if len(sizes) != 1:
        raise ModuleError(f"cuts differ in patch_size {sorted(sizes)}; cut them alike")
    scenes = [c.scene for c in decoded]
    if len(set(scenes)) != len(scenes):
        raise ModuleError(f"cuts name a scene product twice: {scenes}")
    cuts = [(c, _scene_time(ctx, c.scene, f"cuts.{i}")) for i, c in enumerate(decoded)]
    cuts = [(c, t) for c, t in cuts if c.count]
    if not cuts:
        raise ModuleError(f"no plumes in scene products {scenes}: nothing to put in a datacube")
    p = cuts[0][0].patch_size
    labels = np.concatenate([c.label for c, _ in cuts])
    split = stratified_split(_per_patch(cuts)[0], seed=int(inputs.get("seed", 0)))
    ds = _dataset(cuts, split.assignment, str(inputs.get("title", "")))
    store = ctx.services.object_store
    prefix = f"workflows/{ctx.step_id}/{ZARR}"
    with tempfile.TemporaryDirectory(prefix="gravitas-patches-") as tmp:
        root = Path(tmp) / ZARR
        write_zarr(ds, root)
        for f in sorted(root.rglob("*")):
            if f.is_file():
                store.put_file(f"{prefix}/{f.relative_to(root).as_posix()}", f)
    lon, lat = ds["lon"].values, ds["lat"].values
    hx, hy = abs(cuts[0][0].transform[0]) / 2, abs(cuts[0][0].transform[4]) / 2
    w, e = float(lon.min()) - hx, float(lon.max()) + hx
    s, n = float(lat.min()) - hy, float(lat.max()) + hy
    times = sorted(t for _, t in cuts)
    counts = {name: int(split.counts.get(name, 0)) for name in SPLITS}
    total = int(labels.astype(np.int64).sum())
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
        ctx, item.to_dict(include_self_link=False), [(PRODUCTS, c) for c in scenes]
    )
    return {
        "item_id": str(published["id"]),
        "zarr_href": store.href(prefix),
        "patches": int(ds.sizes["patch"]),
        "patch_size": p,
        "plume_pixels": total,
        "split_counts": counts,
    }
