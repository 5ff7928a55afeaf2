"""The methane-survey modules: find radiance scenes in the catalog, run the matched
filter and threshold plumes on each (where the scene is), summarize and publish.

- ``scene-search@1.0.0``: the STAC items of a collection in an area and time (the node's
  catalog, federated: items other nodes registered, signed, carry their owner);
- ``methane-scan@1.0.0``: one scene -> the matched-filter enhancement (COG) and its
  plumes (GeoJSON), stored under the step id and registered as a STAC item with the
  step's provenance (:mod:`.provenance`); outputs the per-scene summary;
- ``plume-summary@1.0.0``: the per-scene summaries -> totals, published as one STAC item
  derived from every scene product.

Only summaries and item references move between steps (and between nodes); the radiance
is read where it is registered.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from gravitas.agents.modules.context import ModuleContext
from gravitas.agents.modules.declare import BBOX, DATETIME, builtin
from gravitas.agents.modules.errors import ModuleError
from gravitas.agents.modules.provenance import publish_item

PRODUCTS = "methane-survey"
"""STAC collection of the survey's products (per scene, the summaries, the plume cubes)."""
ITEM_REF = {
    "type": "object",
    "properties": {
        "collection": {"type": "string"},
        "item_id": {"type": "string"},
        "href": {"type": "string"},
        "node": {"type": "string"},
        "bytes": {"type": "integer"},
    },
    "required": ["collection", "item_id", "href"],
}

SCENE_SEARCH = builtin(
    "scene-search",
    "STAC items of a collection in a bbox and time range (federated catalog), as item "
    "references (collection, id, data href, owning node, bytes).",
    kind="python",
    target="gravitas.agents.modules.survey:scene_search",
    inputs={
        "collection": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"},
        "bbox": BBOX,
        "start": DATETIME,
        "end": DATETIME,
        "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    },
    required=["collection", "bbox", "start", "end"],
    outputs={"scenes": {"type": "array"}, "count": {"type": "integer"}},
)

METHANE_SCAN = builtin(
    "methane-scan",
    "Methane matched filter on one radiance scene, plumes above a threshold, a per-scene "
    "summary; the enhancement, the plume mask and the plumes are registered in STAC with "
    "the step's provenance.",
    kind="python",
    target="gravitas.agents.modules.survey:methane_scan",
    inputs={
        "scene": ITEM_REF,
        "threshold_ppm_m": {"type": "number", "exclusiveMinimum": 0, "default": 1000},
        "min_pixels": {"type": "integer", "minimum": 1, "maximum": 100000, "default": 5},
        "iterations": {"type": "integer", "minimum": 1, "maximum": 100, "default": 30},
    },
    required=["scene"],
    outputs={
        "item_id": {"type": "string"},
        "scene_id": {"type": "string"},
        "plume_count": {"type": "integer"},
        "max_ppm_m": {"type": "number"},
        "background_mean_ppm_m": {"type": "number"},
        "ime_kg": {"type": "number"},
        "plumes": {"type": "array"},
        "bbox": {"type": "array"},
        "datetime": {"type": "string"},
    },
)

PLUME_SUMMARY = builtin(
    "plume-summary",
    "Totals over the scenes' plume summaries, published as one STAC item derived from "
    "every scene product.",
    kind="python",
    target="gravitas.agents.modules.survey:plume_summary",
    inputs={
        "item_ids": {"type": "array", "items": {"type": "string"}},
        "plume_counts": {"type": "array", "items": {"type": "integer"}},
        "max_ppm_m": {"type": "array", "items": {"type": "number"}},
        "ime_kg": {"type": "array", "items": {"type": "number"}},
        "bboxes": {"type": "array"},
        "datetimes": {"type": "array", "items": {"type": "string"}},
        "title": {"type": "string", "maxLength": 200, "default": "methane survey"},
    },
    required=["item_ids", "plume_counts", "max_ppm_m", "ime_kg", "bboxes", "datetimes"],
    outputs={
        "item_id": {"type": "string"},
        "scenes": {"type": "integer"},
        "scenes_with_plumes": {"type": "integer"},
        "plumes": {"type": "integer"},
        "max_ppm_m": {"type": "number"},
        "ime_kg": {"type": "number"},
    },
)


def _data_asset(item: dict[str, Any]) -> tuple[str, int]:
    assets = item.get("assets") or {}
    asset = assets.get("data") or next(iter(assets.values()), None)
    if not isinstance(asset, dict) or not asset.get("href"):
        raise ModuleError(f"item {item.get('id')!r} has no data asset")
    return str(asset["href"]), int(asset.get("file:size") or 0)


def scene_search(inputs: dict[str, Any], ctx: ModuleContext) -> dict[str, Any]:
    """``scene-search``: the items of a collection in a bbox and time range."""
    from gravitas.storage.catalog.base import NODE_PROPERTY, SearchParams

    if ctx.services is None:
        raise ModuleError("scene-search needs a node's catalog")
    west, south, east, north = (float(v) for v in inputs["bbox"])
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise ModuleError(f"bbox {inputs['bbox']} must be west<east, south<north in degrees")
    page = ctx.services.catalog.search(
        SearchParams(
            bbox=(west, south, east, north),
            datetime=f"{inputs['start']}/{inputs['end']}",
            collections=(inputs["collection"],),
            federated=True,
            limit=int(inputs.get("limit", 100)),
            sortby=(),
        )
    )
    me = ctx.services.settings.node_id
    scenes = []
    for item in sorted(page.items, key=lambda i: str(i["id"])):
        href, size = _data_asset(item)
        owner = str(item.get("properties", {}).get(NODE_PROPERTY) or me)
        scenes.append(
            {
                "collection": str(item["collection"]),
                "item_id": str(item["id"]),
                "href": href,
                "node": owner,
                "bytes": size,
            }
        )
    return {"scenes": scenes, "count": len(scenes)}


def _scene_path(ctx: ModuleContext, scene: dict[str, Any]) -> tuple[Path, datetime | None]:
    """The local radiance file of a scene reference and its registered time, checked
    against the node's catalog (the item must be registered here; the reference's own
    href is never read) and the href allow-list."""
    from gravitas.agents.hrefs import readable_path
    from gravitas.storage.catalog.errors import ItemNotFoundError

    assert ctx.services is not None
    try:
        item = ctx.services.catalog.get_item(scene["collection"], scene["item_id"])
    except ItemNotFoundError:
        raise ModuleError(
            f"scene {scene['collection']}/{scene['item_id']} is not in node {ctx.node_id}'s catalog"
        ) from None
    href, _ = _data_asset(item)
    path = readable_path(ctx.services, href)
    ctx.read_bytes.append(path.stat().st_size)
    raw = (item.get("properties") or {}).get("datetime")
    when = datetime.fromisoformat(str(raw).replace("Z", "+00:00")) if raw else None
    return path, when


MASK_FILE = "plume_mask.tif"
"""The plume labels of a scene product, next to its enhancement (same grid)."""


def write_mask_cog(product: Any, path: Path) -> Path:
    """The plume labels of a retrieval (0 background, 1..n plumes) as a COG on the
    enhancement's grid (uint16, no nodata: every pixel is labelled)."""
    import numpy as np
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    grid = product.grid
    rows, cols = grid.array.shape
    profile: dict[str, Any] = {
        "driver": "COG",
        "width": cols,
        "height": rows,
        "count": 1,
        "dtype": "uint16",
        "crs": CRS.from_wkt(grid.crs_wkt),
        "transform": Affine.from_gdal(*grid.geotransform),
        "compress": "deflate",
        "blocksize": 256,
        "overview_resampling": "nearest",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.asarray(product.labels, np.uint16), 1)
        dst.set_band_description(1, "plume_label")
    return path


def methane_scan(inputs: dict[str, Any], ctx: ModuleContext) -> dict[str, Any]:
    """``methane-scan``: the matched filter and plumes of one scene, published in STAC."""
    from gravitas.agents.methane_retrieval import plume_features, retrieve_scene, write_cog
    from gravitas.storage.catalog.items import item_from_file

    if ctx.services is None:
        raise ModuleError("methane-scan needs a node (its catalog and object store)")
    scene = inputs["scene"]
    path, registered = _scene_path(ctx, scene)
    product = retrieve_scene(
        path,
        iterations=int(inputs.get("iterations", 30)),
        threshold=float(inputs.get("threshold_ppm_m", 1000)),
        min_pixels=int(inputs.get("min_pixels", 5)),
    )
    scene_id = str(scene["item_id"])
    item_id = f"{scene_id}-ch4-{ctx.run_id or ctx.step_id}"[:200]
    prefix = f"workflows/{ctx.step_id}"
    fc = plume_features(product, scene_id)
    store = ctx.services.object_store
    with tempfile.TemporaryDirectory(prefix="gravitas-survey-") as tmp:
        when = registered or product.acquired
        cog = write_cog(product.grid, Path(tmp) / "ch4_enhancement.tif", when)
        store.put_file(f"{prefix}/ch4_enhancement.tif", cog)
        mask = write_mask_cog(product, Path(tmp) / MASK_FILE)
        store.put_file(f"{prefix}/{MASK_FILE}", mask)
        store.put_bytes(f"{prefix}/plumes.geojson", json.dumps(fc, sort_keys=True).encode())
        item = item_from_file(
            cog,
            PRODUCTS,
            item_id,
            when,
            {
                "methane:plume_count": len(product.plumes),
                "methane:max_ppm_m": product.max_ppm_m,
                "methane:background_mean_ppm_m": product.background_mean_ppm_m,
            },
        )
    doc = item.to_dict(include_self_link=False)
    doc["assets"] = {
        "data": {
            "href": store.href(f"{prefix}/ch4_enhancement.tif"),
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
            "title": "CH4 enhancement (ppm m)",
        },
        "plume_mask": {
            "href": store.href(f"{prefix}/{MASK_FILE}"),
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
            "title": "plume labels (0 background, 1..n plumes, largest first)",
        },
        "plumes": {
            "href": store.href(f"{prefix}/plumes.geojson"),
            "type": "application/geo+json",
            "roles": ["data"],
            "title": f"{len(product.plumes)} plume outline(s), EPSG:4326",
        },
    }
    published = publish_item(ctx, doc, [(str(scene["collection"]), scene_id)])
    plumes = [
        {k: f["properties"][k] for k in ("plume_id", "max_ppm_m", "area_m2", "ime_kg")}
        for f in fc["features"]
    ]
    return {
        "item_id": published["id"],
        "scene_id": scene_id,
        "plume_count": len(plumes),
        "max_ppm_m": round(product.max_ppm_m, 6),
        "background_mean_ppm_m": round(product.background_mean_ppm_m, 6),
        "ime_kg": round(sum(float(p["ime_kg"]) for p in plumes), 6),
        "plumes": plumes,
        "bbox": list(published["bbox"]),
        "datetime": str(published["properties"]["datetime"]),
    }


def plume_summary(inputs: dict[str, Any], ctx: ModuleContext) -> dict[str, Any]:
    """``plume-summary``: totals over the scenes, published as one STAC item."""
    ids = list(inputs["item_ids"])
    counts = [int(c) for c in inputs["plume_counts"]]
    maxima = [float(m) for m in inputs["max_ppm_m"]]
    ime = [float(v) for v in inputs["ime_kg"]]
    boxes, times = list(inputs["bboxes"]), list(inputs["datetimes"])
    if not len(ids) == len(counts) == len(maxima) == len(ime) == len(boxes) == len(times):
        raise ModuleError(
            "item_ids, plume_counts, max_ppm_m, ime_kg, bboxes, datetimes differ in length"
        )
    if not ids:
        raise ModuleError("no scenes to summarize (the search found none)")
    west = min(float(b[0]) for b in boxes)
    south = min(float(b[1]) for b in boxes)
    east = max(float(b[2]) for b in boxes)
    north = max(float(b[3]) for b in boxes)
    out = {
        "scenes": len(ids),
        "scenes_with_plumes": sum(1 for c in counts if c > 0),
        "plumes": sum(counts),
        "max_ppm_m": max(maxima),
        "ime_kg": round(sum(ime), 6),
    }
    item_id = f"survey-{ctx.run_id or ctx.step_id}"[:200]
    doc = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": PRODUCTS,
        "bbox": [west, south, east, north],
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [[west, south], [east, south], [east, north], [west, north], [west, south]]
            ],
        },
        "properties": {
            "title": str(inputs.get("title", "methane survey")),
            "start_datetime": min(times),
            "end_datetime": max(times),
            "datetime": None,
            **{f"methane:{k}": v for k, v in out.items()},
        },
        "links": [],
        "assets": {},
    }
    publish_item(ctx, doc, [(PRODUCTS, i) for i in ids])
    return {"item_id": item_id, **out}


MODULES = [SCENE_SEARCH, METHANE_SCAN, PLUME_SUMMARY]
