"""Step 7: write the datacube (Zarr v2, one patch per chunk, CF metadata, consolidated; or
NetCDF) into the object store, a quicklook PNG per modality, and register a STAC collection
(datacube extension) with one item per split."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from gravitas.agents.datacube.assemble import Assembled
from gravitas.agents.datacube.match import MatchResult
from gravitas.agents.datacube.retrieve import Retrieved
from gravitas.agents.datacube.zarr_v2 import ZarrStream, write_zarr
from gravitas.agents.registration import register_item
from gravitas.agents.services import NodeServices
from gravitas.kernels.datacube.split import SPLITS
from gravitas.schemas.events import DatacubeRequested, ItemRegistered
from gravitas.storage.catalog.collections import STAC_VERSION
from gravitas.storage.catalog.derived import add_datacube
from gravitas.storage.objects.local import LocalObjectStore

__all__ = [
    "StreamedCube",
    "Written",
    "collection_id",
    "place_patches",
    "quicklook_canvas",
    "to_dataset",
    "write_datacube",
]


@dataclass
class StreamedCube:
    """A cube whose patches were written chunk by chunk (agents/datacube/tiled.py)."""

    root: Path
    """The local directory the files go to (``cube.zarr`` below it)."""
    zarr: ZarrStream
    canvases: dict[int, NDArray[np.float64]]
    """Quicklook picture per band index."""


@dataclass
class Written:
    """Where the datacube went and the registrations to publish."""

    collection_id: str
    hrefs: dict[str, str]
    registrations: list[ItemRegistered]


def collection_id(req: DatacubeRequested) -> str:
    """The STAC collection of a request's datacube."""
    return f"datacube-{req.request_id}"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_dataset(req: DatacubeRequested, a: Assembled, r: Retrieved, m: MatchResult) -> xr.Dataset:
    """The datacube as a CF-style dataset: ``data(patch, time, band, y, x)`` and friends."""
    p = a.data.shape[-1]
    times = (a.times * 1e9).astype("datetime64[ns]")
    split_ids = a.split.assignment.astype(np.int8)
    ds = xr.Dataset(
        {
            "data": (("patch", "time", "band", "y", "x"), a.data, {
                "long_name": "harmonized band values (gap-filled)",
                "grid_mapping": "crs",
                "coordinates": "lat lon",
            }),
            "gap_filled": (("patch", "time", "band", "y", "x"), a.filled.astype(np.uint8), {
                "long_name": "1 where the value was gap-filled",
                "flag_values": np.array([0, 1], np.uint8),
                "flag_meanings": "observed filled",
            }),
            "split": (("patch",), split_ids, {
                "long_name": "train / validation / test split",
                "flag_values": np.array([0, 1, 2], np.int8),
                "flag_meanings": "train val test",
            }),
            "label_class": (("patch",), a.labels.astype(np.int32), {
                "long_name": "majority label class code of the patch",
                "classes": json.dumps({str(k): v for k, v in a.class_names.items()}),
            }),
            "valid_fraction": (("patch",), a.valid_fraction.astype(np.float32), {
                "long_name": "fraction of observed (not gap-filled) pixels",
                "units": "1",
            }),
            "crs": ((), np.int32(0), {
                "grid_mapping_name": "latitude_longitude",
                "epsg_code": "EPSG:4326",
                "longitude_of_prime_meridian": 0.0,
                "semi_major_axis": 6378137.0,
                "inverse_flattening": 298.257223563,
            }),
        },
        coords={
            "time": ("time", times, {"standard_name": "time", "axis": "T"}),
            "band": ("band", np.array(a.bands, dtype=str)),
            "lat": (("patch", "y"), a.lat, {"standard_name": "latitude",
                                            "units": "degrees_north"}),
            "lon": (("patch", "x"), a.lon, {"standard_name": "longitude",
                                            "units": "degrees_east"}),
            "row": ("patch", a.origins[:, 0], {"long_name": "top row in the grid window"}),
            "col": ("patch", a.origins[:, 1], {"long_name": "left column in the grid window"}),
        },
    )  # fmt: skip
    if a.label_tiles is not None:
        ds["label"] = (("patch", "y", "x"), a.label_tiles.astype(np.int32), {
            "long_name": f"label class code ({req.label.layer if req.label else ''})",
            "_FillValue": np.int32(req.label.nodata if req.label else 0),
        })  # fmt: skip
    ds.attrs.update(
        Conventions="CF-1.8",
        title=f"gravitas datacube {req.request_id}",
        institution="gravitas",
        source=", ".join(f"{x.name}: {','.join(x.layers)}" for x in req.modalities),
        # the request's time, not now: a replay writes the same bytes
        history=f"{_iso(req.occurred_at.timestamp())} harmonize agent",
        grid_level=r.level,
        grid_window=list(r.window),
        bbox=list(r.bbox),
        patch_size=p,
        norm_stats=json.dumps(a.stats.to_dict(), allow_nan=True),
        drops=json.dumps({**m.drops.dropped, **r.dropped, **a.dropped}),
        request=req.model_dump_json(),
    )
    return ds


def _upload_tree(services: NodeServices, root: Path, prefix: str) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            services.object_store.put_file(f"{prefix}/{path.relative_to(root).as_posix()}", path)


def quicklook_canvas(a: Assembled, band: int) -> NDArray[np.float64]:
    """The quicklook's picture of one band: every patch at its place in the grid window
    (rows and columns from the smallest patch origin), the median over time of each pixel."""
    p = a.data.shape[-1]
    origin = a.origins - a.origins.min(axis=0)
    canvas = np.full((int(origin[:, 0].max()) + p, int(origin[:, 1].max()) + p), np.nan)
    place_patches(canvas, a, band, origin)
    return canvas


def place_patches(
    canvas: NDArray[np.float64], a: Assembled, band: int, origin: NDArray[np.int64]
) -> None:
    """Put the time median of ``band`` of every patch of ``a`` at ``origin`` (rows, cols)."""
    import warnings

    n, p = a.data.shape[0], a.data.shape[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN pixel stays NaN
        typical = np.nanmedian(a.data[:, :, band], axis=1)
    for i in range(n):
        r, c = int(origin[i, 0]), int(origin[i, 1])
        canvas[r : r + p, c : c + p] = typical[i]


def _quicklook(
    a: Assembled, band: int, path: Path, canvas: NDArray[np.float64] | None = None
) -> None:
    """A map figure of one band: every patch placed at its lon/lat (the median over time
    of each pixel), lon/lat axes, country outlines, colour bar from minimum to maximum
    (a uniform field, such as one ERA5 cell over a small bbox, in the ramp's middle).
    ``canvas``: the picture, when it was built piece by piece (a streamed cube)."""
    from gravitas.kernels.mapfigure import MapFigure, describe_bbox, render_map
    from gravitas.storage.basemap import basemap

    n, p = a.data.shape[0], a.data.shape[-1]
    if canvas is None:
        canvas = quicklook_canvas(a, band)
    dy = abs(float(a.lat[0, 1] - a.lat[0, 0])) if p > 1 else 1e-6
    dx = abs(float(a.lon[0, 1] - a.lon[0, 0])) if p > 1 else 1e-6
    box = (float(a.lon.min()) - dx / 2, float(a.lat.min()) - dy / 2,
           float(a.lon.max()) + dx / 2, float(a.lat.max()) + dy / 2)  # fmt: skip
    t0, t1 = (
        datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d") for t in (a.times[0], a.times[-1])
    )
    when = (f"median over {len(a.times)} time steps, {t0} to {t1}" if len(a.times) > 1
            else f"{t0} (single time step)")  # fmt: skip
    base = basemap(box)
    spec = MapFigure(
        title=f"datacube band {a.bands[band]}",
        subtitle=f"{', '.join(base.countries[:2]) or 'open sea'} ({describe_bbox(box)}); {when}",
        quantity=f"{a.bands[band]} (units of the source layer)",
        bbox=box,
        lines=base.lines,
        lines_source=base.source,
        notes=[f"{n} patches of {p} px at their places; light grey: outside the patches."],
        source="gravitas datacube",
    )
    render_map(canvas, spec, path)


def _collection(
    req: DatacubeRequested, a: Assembled, r: Retrieved, hrefs: dict[str, str]
) -> dict[str, Any]:
    import pystac

    t0, t1 = datetime.fromtimestamp(a.times[0], UTC), datetime.fromtimestamp(a.times[-1], UTC)
    coll = pystac.Collection(
        id=collection_id(req),
        description=f"AI-ready datacube of request {req.request_id}: "
        f"{', '.join(m.name for m in req.modalities)}; patches {req.patch_size} px",
        extent=pystac.Extent(
            pystac.SpatialExtent([list(r.bbox)]), pystac.TemporalExtent([[t0, t1]])
        ),
        license="other",
    )
    add_datacube(coll, _dimensions(req, a, r), _variables(a))
    for key, href in hrefs.items():
        media = "image/png" if key.startswith("quicklook") else _media(req)
        roles = ["overview"] if key.startswith("quicklook") else ["data"]
        coll.add_asset(key, pystac.Asset(href=href, media_type=media, roles=roles))
    return coll.to_dict(include_self_link=False)


def _media(req: DatacubeRequested) -> str:
    return "application/vnd+zarr" if req.output_format == "zarr" else "application/x-netcdf"


def _dimensions(req: DatacubeRequested, a: Assembled, r: Retrieved) -> dict[str, dict[str, Any]]:
    return {
        "patch": {"type": "index", "extent": [0, int(a.data.shape[0]) - 1]},
        "time": {"type": "temporal", "extent": [_iso(a.times[0]), _iso(a.times[-1])],
                 "step": f"PT{int(req.time_step_s)}S"},
        "band": {"type": "bands", "values": list(a.bands)},
        "x": {"type": "spatial", "axis": "x", "extent": [r.bbox[0], r.bbox[2]],
              "reference_system": 4326},
        "y": {"type": "spatial", "axis": "y", "extent": [r.bbox[1], r.bbox[3]],
              "reference_system": 4326},
    }  # fmt: skip


def _variables(a: Assembled) -> dict[str, dict[str, Any]]:
    dims5 = ["patch", "time", "band", "y", "x"]
    out: dict[str, dict[str, Any]] = {
        "data": {"type": "data", "dimensions": dims5},
        "gap_filled": {"type": "auxiliary", "dimensions": dims5},
        "split": {"type": "auxiliary", "dimensions": ["patch"]},
        "label_class": {"type": "auxiliary", "dimensions": ["patch"]},
    }
    if a.label_tiles is not None:
        out["label"] = {"type": "data", "dimensions": ["patch", "y", "x"]}
    return out


def _items(
    req: DatacubeRequested, a: Assembled, r: Retrieved, hrefs: dict[str, str]
) -> list[dict[str, Any]]:
    w, s, e, n = r.bbox
    counts, classes = a.split.counts, a.class_counts
    items = []
    for name in SPLITS:
        items.append({
            "type": "Feature",
            "stac_version": STAC_VERSION,
            "stac_extensions": [],
            "id": f"{collection_id(req)}-{name}",
            "collection": collection_id(req),
            "bbox": [w, s, e, n],
            "geometry": {"type": "Polygon",
                         "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
            "properties": {
                "datetime": None,
                "start_datetime": _iso(a.times[0]),
                "end_datetime": _iso(a.times[-1]),
                "gravitas:split": name,
                "gravitas:patches": counts[name],
                "gravitas:class_counts": classes[name],
                "gravitas:request_id": req.request_id,
            },
            "links": [],
            "assets": {"data": {"href": hrefs["data"], "type": _media(req), "roles": ["data"],
                                "title": f"datacube (split variable == {SPLITS.index(name)})"}},
        })  # fmt: skip
    return items


def write_datacube(
    services: NodeServices,
    req: DatacubeRequested,
    a: Assembled,
    r: Retrieved,
    m: MatchResult,
    streamed: StreamedCube | None = None,
) -> Written:
    """Write, upload and register the datacube (step 7). ``streamed``: the patches were
    already written chunk by chunk (``a.data``/``a.filled`` are lazy placeholders)."""
    ds = to_dataset(req, a, r, m)
    prefix = f"datacubes/{req.request_id}"
    hrefs: dict[str, str] = {}
    local = isinstance(services.object_store, LocalObjectStore)
    with tempfile.TemporaryDirectory(prefix="gravitas-cube-") as tmp:
        # a local object store takes the files in place; others get them uploaded
        root = services.object_store.root / prefix if local else Path(tmp)  # type: ignore[attr-defined]
        if streamed is not None:
            root = streamed.root
        root.mkdir(parents=True, exist_ok=True)
        if req.output_format == "zarr":
            p = a.data.shape[-1]
            chunks = (1, a.data.shape[1], a.data.shape[2], p, p)  # one patch per chunk
            ds["data"].encoding["_FillValue"] = np.float32(np.nan)
            encodings = {"data": chunks, "gap_filled": chunks}
            if streamed is not None:
                streamed.zarr.commit(ds, encodings)
            else:
                write_zarr(ds, root / "cube.zarr", encodings)
            if not local:
                _upload_tree(services, root / "cube.zarr", f"{prefix}/cube.zarr")
            hrefs["data"] = services.object_store.href(f"{prefix}/cube.zarr")
        else:
            ds.to_netcdf(root / "cube.nc")
            if not local:
                services.object_store.put_file(f"{prefix}/cube.nc", root / "cube.nc")
            hrefs["data"] = services.object_store.href(f"{prefix}/cube.nc")
        for mod in req.modalities:
            band = next(i for i, b in enumerate(a.bands) if b.startswith(f"{mod.name}:"))
            png = root / f"quicklook_{mod.name}.png"
            _quicklook(a, band, png, streamed.canvases.get(band) if streamed else None)
            if not local:
                services.object_store.put_file(f"{prefix}/{png.name}", png)
            hrefs[f"quicklook_{mod.name}"] = services.object_store.href(f"{prefix}/{png.name}")
    services.catalog.upsert_collection(_collection(req, a, r, hrefs))
    source = str(req.event_id)
    regs = [register_item(services, it, source, req.occurred_at) for it in _items(req, a, r, hrefs)]
    return Written(collection_id(req), hrefs, regs)
