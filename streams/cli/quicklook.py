"""A layer's quicklook as a map figure: read from the overviews, crop, aggregate, draw.

Used by ``gravitas quicklook`` and the quickstart. The figure names what it shows: one
time step is shown as it is (its time in the title); several are reduced (``--reduce``,
maximum by default) and the title says so with the number of steps and their span.
Integer layers with few values (masks, land cover) are drawn as classes with a legend.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np

from gravitas.kernels.mapfigure import (
    FMASK_CLASSES,
    FMASK_COLOURS,
    MapFigure,
    Rendered,
    describe_bbox,
    is_categorical,
    render_map,
)
from gravitas.schemas.common import TimeRange
from gravitas.schemas.errors import InputError
from gravitas.schemas.settings import Settings

__all__ = ["REDUCERS", "Reducer", "crop_to_data", "layer_quicklook", "time_caption"]

Reducer = Literal["max", "mean", "min", "sum", "last"]
REDUCERS: dict[str, str] = {
    "max": "maximum",
    "mean": "mean",
    "min": "minimum",
    "sum": "sum",
    "last": "latest value",
}
BBox = tuple[float, float, float, float]


def crop_to_data(
    arr: np.ndarray, lat: np.ndarray, lon: np.ndarray, pad: int = 2
) -> tuple[np.ndarray, BBox]:
    """The rows and columns of ``arr`` (NaN = no data) that hold data, with ``pad`` pixels
    around, and the bbox of their pixel edges (``lat`` descending pixel centres)."""
    finite = np.isfinite(arr)
    if not finite.any():
        raise InputError("the quicklook window holds no data; widen --bbox or --time")
    rows = np.flatnonzero(finite.any(axis=1))
    cols = np.flatnonzero(finite.any(axis=0))
    r0, r1 = max(rows[0] - pad, 0), min(rows[-1] + pad, arr.shape[0] - 1)
    c0, c1 = max(cols[0] - pad, 0), min(cols[-1] + pad, arr.shape[1] - 1)
    dy = abs(float(lat[1] - lat[0])) if lat.size > 1 else 1.0
    dx = abs(float(lon[1] - lon[0])) if lon.size > 1 else 1.0
    bbox = (
        float(lon[c0]) - dx / 2, float(lat[r1]) - dy / 2,
        float(lon[c1]) + dx / 2, float(lat[r0]) + dy / 2,
    )  # fmt: skip
    return arr[r0 : r1 + 1, c0 : c1 + 1], bbox


def _stamp(t: datetime) -> str:
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%d") if (t.hour, t.minute) == (0, 0) else t.strftime("%Y-%m-%d %H:%M")


def time_caption(times: list[datetime], reduce: str) -> str:
    """``2018-09-13 14:00 UTC`` for one step; ``maximum of 23 time steps, 2018-09-13 00:00
    to 2018-09-13 22:00 UTC`` for several."""
    if len(times) == 1:
        return f"{_stamp(times[0])} UTC (single time step)"
    return (
        f"{REDUCERS[reduce]} of {len(times)} time steps, "
        f"{_stamp(times[0])} to {_stamp(times[-1])} UTC"
    )


def layer_units(services: object, layer: str, collection: str) -> tuple[str | None, str | None]:
    """(unit, description) of a layer from its STAC items: ``cube:variables`` (a single
    data variable, or the one the layer is named after) or the assets' ``raster:bands``.
    (None, None) when the items do not say."""
    from gravitas.storage.catalog.base import SearchParams

    if not collection:
        return None, None
    page = services.catalog.search(  # type: ignore[attr-defined]
        SearchParams(collections=(collection,), limit=20)
    )
    suffix = layer.rsplit("_", 1)[-1].lower()
    for item in page.items:
        props = item.get("properties", {})
        cube = {k: v for k, v in (props.get("cube:variables") or {}).items()
                if isinstance(v, dict) and v.get("type", "data") == "data"}  # fmt: skip
        pick = [v for k, v in cube.items() if k.lower() in (layer.lower(), suffix)]
        pick = pick or (list(cube.values()) if len(cube) == 1 else [])
        if pick and pick[0].get("unit"):
            return str(pick[0]["unit"]), pick[0].get("description")
        for key, asset in (item.get("assets") or {}).items():
            bands = asset.get("raster:bands") or []
            if len(bands) == 1 and bands[0].get("unit") and suffix in key.lower():
                return str(bands[0]["unit"]), asset.get("title")
    return None, None


def _reduce(stack: np.ndarray, reduce: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
        if reduce == "last":
            out = stack[-1].copy()
            for layer in stack[-2::-1]:  # fill gaps of later steps from earlier ones
                gap = ~np.isfinite(out)
                out[gap] = layer[gap]
            return out
        if reduce == "sum":
            total = np.nansum(stack, axis=0)
            return np.where(np.isfinite(stack).any(axis=0), total, np.nan)
        if reduce == "mean":
            return np.asarray(np.nanmean(stack, axis=0))
        if reduce == "min":
            return np.asarray(np.nanmin(stack, axis=0))
        return np.asarray(np.nanmax(stack, axis=0))


def layer_quicklook(
    settings: Settings,
    layer: str,
    bbox: BBox | None,
    time: TimeRange,
    path: Path,
    *,
    reduce: str = "max",
    max_px: int = 1024,
) -> Rendered:
    """Draw ``layer`` over ``bbox`` (None: where the layer has data) and ``time`` into
    ``path``; the level is the coarsest that still gives about ``max_px`` pixels across."""
    from gravitas.kernels.grid import bbox_to_pixel_range
    from gravitas.storage.basemap import basemap
    from gravitas.storage.pixels.read import read_layer
    from gravitas.streams.cli.local_node import reader_services
    from gravitas.streams.cli.pixels_cmd import _layer_bbox

    if reduce not in REDUCERS:
        raise InputError(f"--reduce must be one of {', '.join(REDUCERS)}, got {reduce!r}")
    services = reader_services(settings)
    try:
        info = services.layers.get(layer)
        if bbox is None:
            bbox = _layer_bbox(services, layer, time.start, time.end)
        units, what = getattr(info, "units", None), None
        if not units:
            units, what = layer_units(services, layer, info.collection)
        level = info.native_level
        while level > info.top_level:
            x0, y0, x1, y1 = bbox_to_pixel_range(level, bbox)
            if max(x1 - x0, y1 - y0) <= max_px:
                break
            level -= 1
        da = read_layer(
            services.block_store, services.layers, layer, bbox, time.start, time.end, level
        )
    finally:
        services.close()
    if da.sizes["time"] == 0:
        raise InputError(f"layer {layer} has no data in {time.start}..{time.end}")
    stack = da.values.astype(np.float64)
    nodata = da.attrs.get("nodata")
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        stack[stack == nodata] = np.nan
    times = [datetime.fromtimestamp(int(t) / 1e9, UTC) for t in da["time"].values.astype("int64")]
    classes = getattr(info, "classes", None)
    categorical = bool(info.categorical or classes) or is_categorical(stack)
    arr = _reduce(stack, "last" if categorical and len(times) > 1 else reduce)
    arr, box = crop_to_data(arr, da["lat"].values, da["lon"].values)
    if categorical and classes is None and "mask" in layer.lower():
        classes = FMASK_CLASSES
    base = basemap(box)
    place = ", ".join(base.countries[:3]) or "open sea"
    quantity = f"{layer} ({units})" if units else f"{layer} (units not recorded at ingest)"
    shown = "latest value" if categorical and len(times) > 1 else reduce
    notes = [
        f"Grid level {level} ({abs(float(da['lon'].values[1] - da['lon'].values[0])):.4g}° "
        f"pixels); light grey: no data."
        if da.sizes["lon"] > 1
        else f"Grid level {level}; light grey: no data.",
    ]
    spec = MapFigure(
        title=f"{layer}: {what}" if what else layer,
        subtitle=f"{place} ({describe_bbox(box)}); {time_caption(times, shown)}",
        quantity=quantity if not categorical else f"{layer} class",
        bbox=box,
        classes=(classes or {}) if categorical else None,
        class_colours=FMASK_COLOURS if classes is FMASK_CLASSES else None,
        lines=base.lines,
        lines_source=base.source,
        notes=notes,
        source=f"gravitas layer {layer}, collection {info.collection or 'unknown'}",
    )
    return render_map(arr, spec, path)
