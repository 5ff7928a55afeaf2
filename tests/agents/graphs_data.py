"""Shared set-up of the process-graph engine tests: a node's stores with real samples
ingested as the ingest + overview agents do, on RocksDB or the real S3 server."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np

from gravitas.agents.services import NodeServices
from gravitas.schemas.settings import load_settings
from gravitas.storage.pixels.index import ScenePlan, prepare_scene, write_scene
from gravitas.storage.pixels.overviews import update_pyramid
from gravitas.storage.sampledata import fetch

FLORENCE = (-80.7, 32.3, -74.8, 37.7)
LANDSAT_BOX = (-106.922, 40.282, -106.906, 40.294)


def services_for(tmp: Path, backend: str, s3: Any = None, **more: Any) -> NodeServices:
    """NodeServices over RocksDB, or over a fresh prefix of the real S3 server."""
    if backend == "rocksdb":
        settings = load_settings(data_dir=tmp, **more)
    else:
        url = f"s3://gravitas-pixels/g-{uuid.uuid4().hex[:8]}?endpoint={s3.endpoint}"
        settings = load_settings(
            data_dir=tmp, block_store=url, s3_access_key=s3.access_key,
            s3_secret_key=s3.secret_key, **more,
        )  # fmt: skip
    return NodeServices(settings)


def ingest(services: NodeServices, plan: ScenePlan) -> None:
    """What the ingest + overview agents do, in-process."""
    store, registry = services.block_store, services.layers
    for fam in write_scene(store, registry, plan):
        update_pyramid(store, registry.get(fam.layer), fam.timestamp, fam.mortons)


def landsat_dates(n: int = 6) -> list[Path]:
    root = Path(fetch("landsat7_series"))
    return sorted(d for d in root.iterdir() if d.name.startswith("LE7"))[:n]


def ingest_landsat(services: NodeServices, n: int = 6) -> None:
    for d in landsat_dates(n):
        fmask = next(d.glob("*fmask*"))
        paths = sorted(d.glob("*_b[345].tif"))
        ingest(services, prepare_scene(d.name, "landsat", paths, layer="ls", mask_path=fmask))


def stageiv_plan() -> ScenePlan:
    return prepare_scene("stageiv-florence", "stageiv", [Path(fetch("stageiv_nc"))],
                         layer="stageiv")  # fmt: skip


def warped_stack(plan: ScenePlan, layer: str, level: int, lons: np.ndarray,
                 lats: np.ndarray) -> np.ndarray:  # fmt: skip
    """``(t, y, x)`` of a plan's warped arrays (rasterio's warp of the original files at
    ingest) cut to the pixel centres ``lons`` x ``lats`` (lats north to south)."""
    from gravitas.kernels.grid import pixel_size

    p = pixel_size(level)
    xs = np.rint((lons + 180.0) / p - 0.5).astype(np.int64)
    ys = np.rint((lats + 90.0) / p - 0.5).astype(np.int64)
    out = []
    for w in sorted((w for w in plan.layers if w.layer == layer), key=lambda w: w.timestamp):
        r = w.warped
        cols = xs - r.bx0 * 256
        rows = (r.by1 * 256 + 255) - ys
        arr = r.array.astype(np.float64)
        if r.nodata is not None and not np.isnan(r.nodata):
            arr[arr == r.nodata] = np.nan
        out.append(arr[np.ix_(rows, cols)])
    return np.stack(out)


def graph(**nodes: dict[str, Any]) -> dict[str, Any]:
    """A flat process graph; the last node is the result."""
    out = {k: dict(v) for k, v in nodes.items()}
    out[list(out)[-1]]["result"] = True
    return out


def node(pid: str, **arguments: Any) -> dict[str, Any]:
    return {"process_id": pid, "arguments": arguments}


def ref(name: str) -> dict[str, str]:
    return {"from_node": name}


def reducer(pid: str, **more: Any) -> dict[str, Any]:
    args = {"data": {"from_parameter": "data"}, **more}
    return {"process_graph": {"r": {"process_id": pid, "arguments": args, "result": True}}}
