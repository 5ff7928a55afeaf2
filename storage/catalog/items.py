"""Build pystac Items and Collections from files.

Rasters (GeoTIFF, COG, JPEG2000) are read with rasterio, gridded datasets (NetCDF,
GRIB) with xarray. Every item gets its footprint and bbox in EPSG:4326, a datetime
(given, from the file, or from its name), the proj, raster, eo (known sensors) and file
extensions, and absolute asset hrefs (``file://`` for local files).

Example::

    item = item_from_file(path, collection="sentinel-2-l1c")
    catalog.upsert_item(item.to_dict())
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pystac
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import NoDataStrings, RasterBand, RasterExtension, Statistics
from shapely.geometry import Polygon, mapping

from gravitas.storage.catalog.bands import eo_band_for, sensor_properties
from gravitas.storage.catalog.errors import ItemBuildError
from gravitas.storage.catalog.files import datetime_from_name, file_info, href_for
from gravitas.storage.readers.cf import dataset_axes
from gravitas.storage.readers.grib_grid import dataset_projection, open_grib

__all__ = [
    "DATASET_SUFFIXES",
    "RASTER_SUFFIXES",
    "add_file_asset",
    "add_raster_asset",
    "collection_from_items",
    "item_from_dataset",
    "item_from_file",
    "item_from_raster",
]

RASTER_SUFFIXES = frozenset({".tif", ".tiff", ".jp2", ".vrt", ".img"})
"""Suffixes read with rasterio."""
DATASET_SUFFIXES = frozenset({".nc", ".nc4", ".netcdf", ".grib", ".grib2", ".grb", ".grb2"})
"""Suffixes read with xarray."""

_MEDIA = {
    ".tif": pystac.MediaType.GEOTIFF,
    ".tiff": pystac.MediaType.GEOTIFF,
    ".jp2": pystac.MediaType.JPEG2000,
    ".nc": "application/netcdf",
    ".nc4": "application/netcdf",
    ".netcdf": "application/netcdf",
    ".grib": "application/wmo-grib",
    ".grib2": "application/wmo-grib",
    ".grb": "application/wmo-grib",
    ".grb2": "application/wmo-grib",
}


def item_from_file(
    path: Path | str,
    collection: str,
    item_id: str | None = None,
    when: datetime | None = None,
    properties: Mapping[str, Any] | None = None,
    asset_key: str = "data",
    checksum: bool = True,
    statistics: bool = False,
) -> pystac.Item:
    """An item for one raster or gridded file; dispatches on the suffix."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in DATASET_SUFFIXES:
        return item_from_dataset(p, collection, item_id, when, properties, asset_key, checksum)
    if suffix in RASTER_SUFFIXES:
        return item_from_raster(
            p, collection, item_id, when, properties, asset_key, checksum, statistics
        )
    raise ItemBuildError(
        f"cannot build a STAC item from {p.name!r}: suffix {suffix!r} is not one of "
        f"{sorted(RASTER_SUFFIXES | DATASET_SUFFIXES)}"
    )


# --- rasters -----------------------------------------------------------------------


def item_from_raster(
    path: Path | str,
    collection: str,
    item_id: str | None = None,
    when: datetime | None = None,
    properties: Mapping[str, Any] | None = None,
    asset_key: str = "data",
    checksum: bool = True,
    statistics: bool = False,
) -> pystac.Item:
    """An item whose geometry, proj and datetime come from one rasterio-readable file."""
    import rasterio

    p = Path(path)
    try:
        with rasterio.open(p) as src:
            footprint = _footprint(src.crs, src.bounds)
            tags = src.tags()
    except rasterio.errors.RasterioIOError as exc:
        raise ItemBuildError(f"rasterio cannot open {p}: {exc}") from exc
    stamp = when or _tag_datetime(tags) or datetime_from_name(p)
    if stamp is None:
        raise ItemBuildError(
            f"no acquisition time in {p.name!r} (tags or name); pass when=datetime(...)"
        )
    item = pystac.Item(
        id=item_id or p.stem,
        geometry=mapping(footprint),
        bbox=[round(v, 9) for v in footprint.bounds],
        datetime=_utc(stamp),
        properties=dict(properties or {}),
        collection=collection,
    )
    for key, value in sensor_properties(p).items():
        item.properties.setdefault(key, value)
    add_raster_asset(item, p, asset_key, checksum=checksum, statistics=statistics)
    return item


def add_raster_asset(
    item: pystac.Item,
    path: Path | str,
    key: str,
    roles: Sequence[str] = ("data",),
    checksum: bool = True,
    statistics: bool = False,
    nodata: float | None = None,
    title: str | None = None,
    default_nodata: float | None = None,
) -> pystac.Asset:
    """Add a raster file as an asset with proj, raster (data type, nodata, scale/offset,
    resolution, statistics when asked), eo (known sensors) and file fields.

    ``nodata`` overrides the file's own nodata value; ``default_nodata`` applies to a
    file that declares none. The first asset's projection is
    also put on the item; later assets with another grid (Sentinel-2's 10/20/60 m
    bands) carry their own proj:shape / proj:transform.
    """
    import rasterio

    p = Path(path)
    with rasterio.open(p) as src:
        crs, shape, transform = src.crs, src.shape, src.transform
        bounds, dtypes = src.bounds, src.dtypes
        given = nodata if nodata is not None else src.nodata
        given = default_nodata if given is None else given
        scales, offsets, names = src.scales, src.offsets, src.descriptions
        res = abs(transform.a)
        stats = [_band_stats(src, b + 1, given) for b in range(src.count)] if statistics else []
    eo = eo_band_for(p)
    asset = pystac.Asset(
        href=href_for(p),
        media_type=_MEDIA.get(p.suffix.lower()),
        roles=list(roles),
        title=title or _band_title(key, eo),
    )
    item.add_asset(key, asset)
    if not ProjectionExtension.has_extension(item):
        _set_proj(ProjectionExtension.ext(item, add_if_missing=True), crs, shape, transform, bounds)
    _set_proj(ProjectionExtension.ext(asset), crs, shape, transform, bounds)
    bands = []
    for i in range(len(dtypes)):
        band = RasterBand.create(
            data_type=dtypes[i],  # type: ignore[arg-type]
            nodata=_nodata(given),
            spatial_resolution=float(res),
            statistics=Statistics.create(**stats[i]) if stats else None,
        )
        if scales[i] not in (None, 1.0) or offsets[i] not in (None, 0.0):
            band.scale, band.offset = float(scales[i]), float(offsets[i])
        bands.append(band)
    RasterExtension.ext(asset, add_if_missing=True).bands = bands
    if eo is not None and len(dtypes) == 1:
        EOExtension.ext(asset, add_if_missing=True).bands = [Band.create(**eo)]  # type: ignore[arg-type]
    elif len(dtypes) > 1 and "data" in roles:
        EOExtension.ext(asset, add_if_missing=True).bands = [
            Band.create(name=names[i] or f"{key}_{i + 1}") for i in range(len(dtypes))
        ]
    if crs is not None and crs.is_projected and crs.linear_units in ("metre", "meter"):
        asset.extra_fields["gsd"] = float(res)
    _add_file(asset, p, checksum)
    return asset


def add_file_asset(
    item: pystac.Item,
    path: Path | str,
    key: str,
    roles: Sequence[str] = ("data",),
    checksum: bool = True,
    statistics: bool = False,
    nodata: float | None = None,
    default_nodata: float | None = None,
) -> pystac.Asset:
    """Add any file the node reads as an asset: rasters with their band metadata
    (:func:`add_raster_asset`), gridded datasets with their media type and file fields."""
    p = Path(path)
    if p.suffix.lower() in RASTER_SUFFIXES:
        return add_raster_asset(
            item, p, key, roles, checksum, statistics, nodata, default_nodata=default_nodata
        )
    asset = pystac.Asset(
        href=href_for(p), media_type=_MEDIA.get(p.suffix.lower()), roles=list(roles), title=key
    )
    item.add_asset(key, asset)
    _add_file(asset, p, checksum)
    return asset


def _band_title(key: str, eo: Mapping[str, object] | None) -> str:
    """``Band B04 (red)`` for a known sensor band, else ``Band <key>``."""
    if eo is None:
        return f"Band {key}"
    common = eo.get("common_name")
    return f"Band {eo['name']} ({common})" if common else f"Band {eo['name']}"


def _set_proj(proj: Any, crs: Any, shape: Any, transform: Any, bounds: Any) -> None:
    epsg = crs.to_epsg() if crs else None
    if epsg:
        proj.code = f"EPSG:{epsg}"
    elif crs:
        proj.wkt2 = crs.to_wkt()
    proj.shape = [int(shape[0]), int(shape[1])]
    proj.transform = [float(v) for v in tuple(transform)[:6]]
    proj.bbox = [float(v) for v in bounds]


STATS_PIXELS = 1_000_000
"""Statistics of larger bands are computed from a decimated read (overviews when the
file has them) of about this many pixels."""


def _band_stats(src: Any, band: int, nodata: float | None) -> dict[str, float]:
    h, w = src.height, src.width
    step = max(1, int(np.ceil(np.sqrt(h * w / STATS_PIXELS))))
    shape = (max(1, -(-h // step)), max(1, -(-w // step)))
    data = src.read(band, masked=True, out_shape=shape).astype("float64")
    if nodata is not None:
        data = np.ma.masked_equal(data, nodata)
    valid = data.compressed()
    valid = valid[np.isfinite(valid)]
    if valid.size == 0:
        return {"valid_percent": 0.0}
    return {
        "minimum": float(valid.min()),
        "maximum": float(valid.max()),
        "mean": float(valid.mean()),
        "stddev": float(valid.std()),
        "valid_percent": float(100.0 * valid.size / data.size),
    }


def _footprint(crs: Any, bounds: Sequence[float], steps: int = 16) -> Polygon:
    """The bounds polygon densified and reprojected to EPSG:4326."""
    from rasterio.warp import transform

    if crs is None:
        raise ItemBuildError("the raster has no CRS; georeference it before cataloguing")
    w, s, e, n = bounds
    ts = np.linspace(0.0, 1.0, steps, endpoint=False)
    xs = np.concatenate([w + (e - w) * ts, np.full(steps, e), e - (e - w) * ts, np.full(steps, w)])
    ys = np.concatenate([np.full(steps, n), n - (n - s) * ts, np.full(steps, s), s + (n - s) * ts])
    if crs.to_epsg() == 4326:
        lons, lats = list(xs), list(ys)
    else:
        lons, lats = transform(crs, "EPSG:4326", list(xs), list(ys))
    ring = [(round(x, 9), round(y, 9)) for x, y in zip(lons, lats, strict=True)]
    return Polygon([*ring, ring[0]])


def _tag_datetime(tags: Mapping[str, str]) -> datetime | None:
    value = tags.get("TIFFTAG_DATETIME") or tags.get("ACQUISITIONDATETIME")
    if not value:
        return None
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _nodata(value: float | None) -> float | NoDataStrings | None:
    if value is None:
        return None
    if np.isnan(value):
        return NoDataStrings.NAN
    if np.isinf(value):
        return NoDataStrings.INF if value > 0 else NoDataStrings.NINF
    return float(value)


# --- gridded datasets ----------------------------------------------------------------

_LAT = ("latitude", "lat", "y", "nav_lat", "rlat")
_LON = ("longitude", "lon", "x", "nav_lon", "rlon")


def item_from_dataset(
    path: Path | str,
    collection: str,
    item_id: str | None = None,
    when: datetime | None = None,
    properties: Mapping[str, Any] | None = None,
    asset_key: str = "data",
    checksum: bool = True,
) -> pystac.Item:
    """An item for a NetCDF or GRIB file: lon/lat extent, time range, datacube fields."""
    import xarray as xr

    p = Path(path)
    engine = "cfgrib" if p.suffix.lower().startswith((".grib", ".grb")) else None
    kwargs: dict[str, Any] = {"indexpath": ""} if engine == "cfgrib" else {}
    try:
        if engine == "cfgrib":  # every hypercube (level type), not only one
            ds = open_grib(p)
        else:
            ds = xr.open_dataset(p, engine=engine, backend_kwargs=kwargs or None)
    except Exception as exc:  # the backends raise many types
        raise ItemBuildError(f"xarray cannot open {p}: {exc}") from exc
    with ds:
        bbox = _dataset_bbox(ds, p)
        start, end = _dataset_times(ds)
        cube = _cube_fields(ds)
        projected = dataset_projection(ds)  # projected GRIB: x/y in metres, not degrees
    if projected is not None:
        cube["dimensions"].update(projected.cube_dimensions())
    if when is not None:
        start = end = _utc(when)
    if start is None or end is None:
        start = end = datetime_from_name(p)
    if start is None or end is None:
        raise ItemBuildError(f"no time coordinate in {p.name!r}; pass when=datetime(...)")
    w, s, e, n = bbox
    geom = Polygon([(w, s), (e, s), (e, n), (w, n), (w, s)])
    props = dict(properties or {})
    if start != end:
        props.update(start_datetime=_iso(start), end_datetime=_iso(end))
    item = pystac.Item(
        id=item_id or p.stem,
        geometry=mapping(geom),
        bbox=[w, s, e, n],
        datetime=None if start != end else start,
        properties=props,
        collection=collection,
    )
    asset = pystac.Asset(
        href=href_for(p), media_type=_MEDIA.get(p.suffix.lower()), roles=["data"], title=p.name
    )
    item.add_asset(asset_key, asset)
    from gravitas.storage.catalog.derived import add_datacube

    add_datacube(item, cube["dimensions"], cube["variables"])
    if projected is not None:
        proj = ProjectionExtension.ext(item, add_if_missing=True)
        proj.wkt2 = projected.crs_wkt
        proj.shape = list(projected.shape)
        proj.transform = list(projected.transform)
        proj.bbox = list(projected.bounds())
    _add_file(asset, p, checksum)
    return item


def _coord(ds: Any, names: Iterable[str]) -> Any:
    for name in names:
        if name in ds.coords or name in ds.variables:
            return ds[name]
    for var in ds.variables.values():
        if var.attrs.get("standard_name") in names:
            return var
    return None


def _dataset_bbox(ds: Any, path: Path) -> tuple[float, float, float, float]:
    lat = _coord(ds, _LAT)
    lon = _coord(ds, _LON)
    if lat is None or lon is None:  # CF units / standard_name / axis, any name
        axes = dataset_axes(ds)
        if axes is not None:
            lat, lon = axes.y, axes.x
    if lat is None or lon is None:
        raise ItemBuildError(
            f"{path.name!r} has no latitude/longitude coordinates; catalog it with a bbox"
        )
    if lat.attrs.get("units", "degrees").startswith("m") or lon.attrs.get("units", "").startswith(
        "m"
    ):
        raise ItemBuildError(f"{path.name!r} has projected x/y, not lon/lat coordinates")
    la = np.asarray(lat.values, dtype="float64")
    lo = np.asarray(lon.values, dtype="float64")
    half_lat = _half_step(la) if la.ndim == 1 else 0.0
    half_lon = _half_step(lo) if lo.ndim == 1 else 0.0
    s = max(-90.0, float(np.nanmin(la)) - half_lat)
    n = min(90.0, float(np.nanmax(la)) + half_lat)
    w = float(np.nanmin(lo)) - half_lon
    e = float(np.nanmax(lo)) + half_lon
    if e > 180.0 or w < -180.0:
        if e - w >= 359.0 or w < -180.0 or (w <= 180.0 < e):
            w, e = -180.0, 180.0
        else:
            w, e = w - 360.0, e - 360.0
    return round(w, 9), round(s, 9), round(e, 9), round(n, 9)


def _half_step(values: np.ndarray) -> float:
    return float(np.nanmedian(np.abs(np.diff(values)))) / 2.0 if values.size > 1 else 0.0


def _dataset_times(ds: Any) -> tuple[datetime | None, datetime | None]:
    for name in ("valid_time", "time", "t"):
        if name in ds.coords and np.issubdtype(ds[name].dtype, np.datetime64):
            vals = np.asarray(ds[name].values).ravel()
            vals = vals[~np.isnat(vals)]
            if vals.size:
                return _np_dt(vals.min()), _np_dt(vals.max())
    return None, None


def _np_dt(value: np.datetime64) -> datetime:
    seconds = value.astype("datetime64[us]").astype("int64") / 1e6
    return datetime.fromtimestamp(float(seconds), tz=UTC)


def _cube_fields(ds: Any) -> dict[str, dict[str, Any]]:
    dims: dict[str, Any] = {}
    lat_names, lon_names = set(_LAT), set(_LON)
    axes = dataset_axes(ds)
    if axes is not None and axes.x.ndim == 1:
        lat_names.add(str(axes.y.dims[0]))
        lon_names.add(str(axes.x.dims[0]))
    for name, size in ds.sizes.items():
        coord = ds.coords.get(name)
        entry: dict[str, Any]
        if name in lon_names or name in lat_names:
            entry = {"type": "spatial", "axis": "x" if name in lon_names else "y"}
            if coord is not None:
                v = np.asarray(coord.values, dtype="float64")
                entry["extent"] = [float(v.min()), float(v.max())]
                if v.size > 1:
                    entry["step"] = float(np.median(np.diff(v)))
            entry["reference_system"] = 4326
        elif coord is not None and np.issubdtype(coord.dtype, np.datetime64):
            v = np.asarray(coord.values).ravel()
            entry = {"type": "temporal", "extent": [_iso(_np_dt(v.min())), _iso(_np_dt(v.max()))]}
        else:
            entry = {"type": str(name)}
            if coord is not None and np.issubdtype(coord.dtype, np.number):
                v = np.asarray(coord.values, dtype="float64")
                entry["extent"] = [float(v.min()), float(v.max())]
                if coord.attrs.get("units"):
                    entry["unit"] = str(coord.attrs["units"])
            else:
                entry["values"] = list(range(int(size)))[:100]
        dims[str(name)] = entry
    variables: dict[str, Any] = {}
    for name, var in ds.data_vars.items():
        spec: dict[str, Any] = {"type": "data", "dimensions": [str(d) for d in var.dims]}
        if var.attrs.get("units"):
            spec["unit"] = str(var.attrs["units"])
        desc = var.attrs.get("long_name") or var.attrs.get("standard_name")
        if desc:
            spec["description"] = str(desc)
        variables[str(name)] = spec
    return {"dimensions": dims, "variables": variables}


# --- shared --------------------------------------------------------------------------


def _add_file(asset: pystac.Asset, path: Path, checksum: bool) -> None:
    info = file_info(path, checksum=checksum)
    ext = FileExtension.ext(asset, add_if_missing=True)
    ext.size = int(info["file:size"])  # type: ignore[call-overload]
    if checksum:
        ext.checksum = str(info["file:checksum"])


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime) -> str:
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def collection_from_items(
    collection_id: str,
    items: Sequence[pystac.Item],
    description: str | None = None,
    license: str = "other",
    title: str | None = None,
) -> pystac.Collection:
    """A collection whose spatial and temporal extents cover ``items``; items keep
    pointing at it by id (they are not added as children)."""
    if not items:
        raise ItemBuildError(f"collection {collection_id!r} needs at least one item for extents")
    boxes = np.array([it.bbox[:2] + it.bbox[-2:] for it in items if it.bbox], dtype="float64")
    spatial = [
        float(boxes[:, 0].min()),
        float(boxes[:, 1].min()),
        float(boxes[:, 2].max()),
        float(boxes[:, 3].max()),
    ]
    starts = [it.common_metadata.start_datetime or it.datetime for it in items]
    ends = [it.common_metadata.end_datetime or it.datetime for it in items]
    if any(v is None for v in starts + ends):
        raise ItemBuildError(f"every item of {collection_id!r} needs a datetime or a range")
    extent = pystac.Extent(
        pystac.SpatialExtent([spatial]),
        pystac.TemporalExtent([[min(starts), max(ends)]]),  # type: ignore[type-var]
    )
    coll = pystac.Collection(
        id=collection_id,
        description=description or f"Items of {collection_id}",
        extent=extent,
        license=license,
        title=title,
    )
    return coll
