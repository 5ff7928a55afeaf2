"""Web Mercator map tiles (XYZ, 256 x 256 PNG) rendered from the overview pyramids.

A tile at zoom ``z`` spans ``360 / 2**z`` degrees of longitude in 256 pixels. It is
drawn from the coarsest pyramid level whose pixels are no larger than the tile's
(clamped to the layer's levels ``top_level..native_level``; the overviews hold the 2 x 2
means of the level below), by nearest-neighbour sampling at the centre of every tile
pixel: Web Mercator is separable (longitude depends on the column only, latitude on the
row only), so the sample is one fancy index of the level's mosaic. Values map to a
matplotlib colormap (an allow-list of names) through ``rescale=(min, max)`` (default:
the layer's min/max at that time from the pyramid statistics); nodata is transparent.

Every parameter is checked before anything is read (:class:`TileRequestError` names
the bad value); the tile grid is morecantile's ``WebMercatorQuad``.
"""

from __future__ import annotations

import functools
import io
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import morecantile
import numpy as np
from pyproj import Transformer

from gravitas.kernels.grid import bbox_to_block_range, bbox_to_pixel_range
from gravitas.schemas.grid import MAX_LEVEL, MIN_LEVEL, pixel_size
from gravitas.storage.blocks import BlockStore
from gravitas.storage.keys import decode_key, scan_ranges
from gravitas.storage.pixels.errors import LayerNotFoundError, TileRequestError
from gravitas.storage.pixels.layers import LayerInfo, LayerRegistry
from gravitas.storage.pixels.overviews import MAX, MIN, stats_layer
from gravitas.storage.pixels.read import _mosaics

__all__ = [
    "COLORMAPS",
    "TILE_SIZE",
    "TileParams",
    "colormap_lut",
    "layer_range",
    "parse_tile_params",
    "render_tile",
    "tile_level",
    "tile_values",
]

TILE_SIZE = 256
MAX_ZOOM = 24
"""Deepest zoom served (WebMercatorQuad's last matrix)."""
COLORMAPS = (
    "viridis",
    "plasma",
    "inferno",
    "magma",
    "cividis",
    "turbo",
    "gray",
    "Greys",
    "Blues",
    "Greens",
    "Reds",
    "YlGnBu",
    "YlOrRd",
    "RdBu_r",
    "coolwarm",
    "Spectral_r",
    "terrain",
)
"""The colormaps a tile may name (matplotlib names)."""
_LAYER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@functools.cache
def _tms() -> morecantile.TileMatrixSet:
    return morecantile.tms.get("WebMercatorQuad")


@functools.cache
def _to_lonlat() -> Transformer:
    return Transformer.from_crs(_tms().crs._pyproj_crs, "EPSG:4326", always_xy=True)


@dataclass(frozen=True)
class TileParams:
    """A checked tile request."""

    layer: str
    z: int
    x: int
    y: int
    time: int | None = None
    """Epoch seconds: the layer's latest time at or before it (None: its latest time)."""
    rescale: tuple[float, float] | None = None
    colormap: str = "viridis"


def _int(name: str, text: str, lo: int, hi: int) -> int:
    if not re.fullmatch(r"\d{1,10}", text):
        raise TileRequestError(f"tile {name} must be an integer in {lo}..{hi}, got {text!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise TileRequestError(f"tile {name} must be in {lo}..{hi} at this zoom, got {value}")
    return value


def _time(text: str) -> int:
    if re.fullmatch(r"-?\d{1,12}", text):
        return int(text)
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TileRequestError(
            f"time must be ISO 8601 (2018-09-14T12:00:00Z) or epoch seconds, got {text!r}"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp())


def _rescale(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2 or not all(_NUMBER.fullmatch(p.strip()) for p in parts):
        raise TileRequestError(f"rescale must be 'min,max' (two numbers), got {text!r}")
    lo, hi = (float(p) for p in parts)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise TileRequestError(f"rescale needs finite min < max, got {text!r}")
    return lo, hi


def parse_tile_params(
    layer: str,
    z: str,
    x: str,
    y: str,
    time: str | None = None,
    rescale: str | None = None,
    colormap: str | None = None,
) -> TileParams:
    """Check every parameter of a tile request (strings as they arrive in a URL)."""
    if not _LAYER_NAME.fullmatch(layer):
        raise TileRequestError(f"unknown layer {layer[:80]!r}: not a layer name")
    zz = _int("z", z, 0, MAX_ZOOM)
    n = (1 << zz) - 1
    xx, yy = _int("x", x, 0, n), _int("y", y, 0, n)
    cmap = "viridis" if colormap is None else colormap
    if cmap not in COLORMAPS:
        raise TileRequestError(f"unknown colormap {cmap[:40]!r}; use one of {', '.join(COLORMAPS)}")
    return TileParams(
        layer,
        zz,
        xx,
        yy,
        None if time is None else _time(time),
        None if rescale is None else _rescale(rescale),
        cmap,
    )


def tile_level(info: LayerInfo, z: int) -> int:
    """The pyramid level a zoom-``z`` tile is drawn from: the coarsest level whose pixels
    are no larger than the tile's, clamped to the layer's levels."""
    tile_px = 360.0 / (TILE_SIZE << z)
    level = MAX_LEVEL
    for lvl in range(MIN_LEVEL, MAX_LEVEL + 1):
        if pixel_size(lvl) <= tile_px:
            level = lvl
            break
    return min(max(level, info.top_level), info.native_level)


def _pick_time(registry: LayerRegistry, info: LayerInfo, t: int | None) -> int:
    times = registry.times(info.name, None, t)
    if not times:
        when = (
            ""
            if t is None
            else f" at or before {datetime.fromtimestamp(t, UTC):%Y-%m-%dT%H:%M:%SZ}"
        )
        raise TileRequestError(f"layer {info.name} has no data{when}")
    return times[-1]


def _layer(registry: LayerRegistry, name: str) -> LayerInfo:
    try:
        return registry.get(name)
    except LayerNotFoundError:
        raise TileRequestError(f"unknown layer {name!r}; see GET /tiles for the layers") from None


@functools.lru_cache(maxsize=4096)
def tile_centres(z: int, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes of the tile's 256 pixel columns and latitudes of its 256 rows (centres;
    cached, read-only)."""
    left, bottom, right, top = _tms().xy_bounds(morecantile.Tile(x, y, z))
    step_x, step_y = (right - left) / TILE_SIZE, (top - bottom) / TILE_SIZE
    i = np.arange(TILE_SIZE) + 0.5
    xs, ys = left + i * step_x, top - i * step_y
    lon, _ = _to_lonlat().transform(xs, np.zeros_like(xs))
    _, lat = _to_lonlat().transform(np.zeros_like(ys), ys)
    lons, lats = np.asarray(lon, np.float64), np.asarray(lat, np.float64)
    lons.flags.writeable = lats.flags.writeable = False
    return lons, lats


def tile_values(
    store: BlockStore, registry: LayerRegistry, params: TileParams, info: LayerInfo | None = None
) -> tuple[np.ndarray, int, int]:
    """``(values, level, timestamp)``: the 256 x 256 values of a tile (row 0 = north;
    NaN, or the nodata of a categorical layer, where there is no data)."""
    info = info or _layer(registry, params.layer)
    ts = _pick_time(registry, info, params.time)
    level = tile_level(info, params.z)
    lon, lat = tile_centres(params.z, params.x, params.y)
    bbox = (
        max(-180.0, float(lon[0])),
        max(-90.0, float(lat[-1])),
        min(180.0, float(lon[-1])),
        min(90.0, float(lat[0])),
    )
    x0, y0, x1, y1 = bbox_to_pixel_range(level, bbox)
    mosaic = _mosaics(store, info, level, [ts], (x0, y0, x1, y1))[0]
    res = pixel_size(level)
    cols = np.floor((lon - (-180.0 + x0 * res)) / res).astype(np.int64)
    rows = np.floor(((-90.0 + (y1 + 1) * res) - lat) / res).astype(np.int64)
    np.clip(cols, 0, mosaic.shape[1] - 1, out=cols)
    np.clip(rows, 0, mosaic.shape[0] - 1, out=rows)
    return mosaic[rows[:, None], cols[None, :]], level, ts


def layer_range(store: BlockStore, info: LayerInfo, ts: int) -> tuple[float, float] | None:
    """The layer's (min, max) at ``ts`` over the whole globe, from the pyramid's top-level
    statistics (None when nothing is stored)."""
    level = info.top_level
    box = bbox_to_block_range(level, (-180.0, -90.0, 180.0, 90.0))
    lo, hi = math.inf, -math.inf
    for k0, k1 in scan_ranges(stats_layer(info.name), level, ts, ts, box):
        for key, blk in store.scan(k0, k1):
            if decode_key(key).timestamp == ts:
                lo, hi = min(lo, float(blk.array[0, MIN])), max(hi, float(blk.array[0, MAX]))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


@functools.cache
def colormap_lut(name: str) -> np.ndarray:
    """(256, 4) uint8 RGBA table of an allow-listed matplotlib colormap."""
    if name not in COLORMAPS:
        raise TileRequestError(f"unknown colormap {name!r}; use one of {', '.join(COLORMAPS)}")
    import matplotlib

    lut = matplotlib.colormaps[name].resampled(256)(np.arange(256), bytes=True)
    return np.ascontiguousarray(lut, dtype=np.uint8)


def colorize(
    values: np.ndarray,
    valid: np.ndarray,
    rescale: tuple[float, float],
    colormap: str,
) -> np.ndarray:
    """(256, 256, 4) RGBA: ``values`` through ``rescale`` onto the colormap's 256 colours
    exactly as matplotlib indexes them (``(v - min) / (max - min) * 256`` in the values'
    float type, truncated, clipped to 0..255), nodata transparent."""
    lo, hi = rescale
    x = values if values.dtype.kind == "f" else values.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        norm = (x - lo) / (hi - lo)
        norm *= 256
        np.clip(norm, 0, 255, out=norm)
        idx = norm.astype(np.uint8)
    rgba = colormap_lut(colormap).view(np.uint32)[:, 0].take(idx)
    rgba[~valid] = 0
    return rgba.view(np.uint8).reshape(*values.shape, 4)


def _valid(values: np.ndarray, info: LayerInfo) -> np.ndarray:
    if values.dtype.kind == "f":
        ok = ~np.isnan(values)
        if info.categorical and info.nodata is not None and not math.isnan(float(info.nodata)):
            ok &= values != info.nodata
        return ok
    if info.nodata is None:
        return np.ones(values.shape, bool)
    return values != info.nodata


def encode_png(rgba: np.ndarray) -> bytes:
    """PNG bytes of an (h, w, 4) uint8 array (fast compression: tiles are cached)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


@dataclass(frozen=True)
class RenderedTile:
    """A tile's PNG and what it was drawn from."""

    png: bytes
    level: int
    timestamp: int
    rescale: tuple[float, float]


def render_tile(store: BlockStore, registry: LayerRegistry, params: TileParams) -> RenderedTile:
    """The PNG of one checked tile request."""
    info = _layer(registry, params.layer)
    values, level, ts = tile_values(store, registry, params, info)
    valid = _valid(values, info)
    rescale = params.rescale or layer_range(store, info, ts) or (0.0, 1.0)
    return RenderedTile(
        encode_png(colorize(values, valid, rescale, params.colormap)), level, ts, rescale
    )
