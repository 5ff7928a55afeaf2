"""Quicklooks a scientist can place: a map figure with matplotlib (Agg, no display).

Every quicklook is the same kind of figure: the data cropped to where it is, on lon/lat
axes (degrees, aspect corrected for latitude), country outlines over it, a title saying
layer, region and time, and a colour bar with the quantity and its units, or a class
legend for categorical layers.

The stretch never hides the extremes: the colour bar runs from the data's minimum (or a
floor the caller fixes, such as 0 for an enhancement) to its maximum, so the peak pixel
has the top colour. Skewed data (rain: a few cells far above the rest) get a square-root
stretch, which keeps both the peak and the weak values visible; the colour bar's ticks
are in data units either way.

What was drawn is written into the PNG's text chunks (``Title``, ``Description``,
``Source`` and ``gravitas:*`` keys: the value range, stretch, bbox and the map frame in
pixels), so tests and catalogues can read it back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "FMASK_CLASSES",
    "FMASK_COLOURS",
    "MAX_CLASSES",
    "MapFigure",
    "Rendered",
    "Stretch",
    "choose_stretch",
    "describe_bbox",
    "is_categorical",
    "render_map",
]

BBox = tuple[float, float, float, float]
MAX_CLASSES = 20
"""An integer layer with at most this many distinct values is drawn as classes."""
SKEW = 0.2
"""Square-root stretch when the 90th percentile sits below this fraction of the range."""
_DPI = 100
_LEFT_IN = 1.0
_MAP_W_IN = 5.3
_MAP_H_MIN_IN = 1.5
_MAP_H_MAX_IN = 6.5

FMASK_CLASSES: dict[int, str] = {
    0: "clear land",
    1: "water",
    2: "cloud shadow",
    3: "snow",
    4: "cloud",
    255: "no observation",
}
"""The Fmask class codes (Zhu & Woodcock 2012), the usual mask of Landsat scenes."""
FMASK_COLOURS: dict[int, str] = {
    0: "#8c6d31",  # clear land: brown
    1: "#2171b5",  # water: blue
    2: "#404040",  # cloud shadow: dark grey
    3: "#9ecae1",  # snow: pale blue
    4: "#ffffff",  # cloud: white
    255: "#000000",  # no observation: black
}
"""Colours a reader expects for the Fmask classes (others get a qualitative palette)."""


@dataclass(frozen=True)
class Stretch:
    """How values map to colours: ``vmin`` -> bottom, ``vmax`` -> top colour."""

    vmin: float
    vmax: float
    gamma: float
    """1 = linear, 0.5 = square root."""

    @property
    def name(self) -> str:
        """``linear`` or ``square-root`` (for captions)."""
        return "linear" if self.gamma == 1.0 else "square-root"


@dataclass(frozen=True)
class MapFigure:
    """What to draw around an array whose pixel edges span ``bbox`` (W, S, E, N, degrees,
    row 0 = north)."""

    title: str
    """First title line: the layer and what it shows (e.g. ``stageiv: precipitation``)."""
    subtitle: str
    """Second line: region and time, with the aggregation named."""
    quantity: str
    """Colour-bar label with units, e.g. ``hourly precipitation (kg m-2)``."""
    bbox: BBox
    cmap: str = "viridis"
    floor: float | None = None
    """Fix the bottom of the colour bar (e.g. 0 for an enhancement) instead of the minimum."""
    classes: Mapping[int, str] | None = None
    """Draw as classes with this legend (codes not listed get ``class <code>``)."""
    class_colours: Mapping[int, str] | None = None
    """Colours of some class codes (e.g. :data:`FMASK_COLOURS`)."""
    lines: Sequence[np.ndarray] = ()
    """Outlines to draw (lon/lat (n, 2) arrays), e.g. country borders."""
    lines_source: str = ""
    outlines: np.ndarray | None = None
    """A label image (same shape as the data) whose regions get a contour (plumes)."""
    outline_label: str = ""
    notes: Sequence[str] = field(default_factory=tuple)
    """Caption lines under the figure (data source, stretch, no-data colour...)."""
    source: str = "gravitas"


@dataclass(frozen=True)
class Rendered:
    """The PNG written and the numbers behind it."""

    path: Path
    stretch: Stretch | None
    size: tuple[int, int]
    frame: tuple[int, int, int, int]
    """Map frame in PNG pixels: x0, y0, x1, y1 (y down)."""


def is_categorical(values: np.ndarray, max_classes: int = MAX_CLASSES) -> bool:
    """True for integer-valued data with at most ``max_classes`` distinct values."""
    arr = np.asarray(values)
    finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr.ravel()
    if finite.size == 0:
        return False
    if arr.dtype.kind == "f" and not np.all(finite == np.round(finite)):
        return False
    return bool(np.unique(finite).size <= max_classes)


def choose_stretch(values: np.ndarray, floor: float | None = None) -> Stretch:
    """From the minimum (or ``floor``) to the maximum; square root when skewed."""
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return Stretch(0.0, 1.0, 1.0)
    hi = float(finite.max())
    lo = float(finite.min()) if floor is None else float(floor)
    if not hi > lo:  # a uniform field: its one value in the middle of the ramp
        half = abs(hi) * 1e-3 or 1.0
        return Stretch(hi - half, hi + half, 1.0)
    p90 = float(np.percentile(finite, 90))
    skewed = (p90 - lo) / (hi - lo) < SKEW
    return Stretch(lo, hi, 0.5 if skewed else 1.0)


def describe_bbox(bbox: BBox) -> str:
    """``32.30-37.70° N, 80.70-74.80° W`` (hemispheres spelled out per end)."""

    def lat(v: float) -> str:
        return f"{abs(v):.2f}° {'N' if v >= 0 else 'S'}"

    def lon(v: float) -> str:
        return f"{abs(v):.2f}° {'E' if v >= 0 else 'W'}"

    w, s, e, n = bbox
    return f"{lat(s)} to {lat(n)}, {lon(w)} to {lon(e)}"


def _tick(value: float) -> str:
    """``13260``, ``12.5``, ``0.00412``: whole numbers from 100 up, else 4 digits."""
    return f"{value:.0f}" if 100 <= abs(value) < 1e7 else f"{value:.4g}"


def _lon_fmt(v: float, _pos: int) -> str:
    v = (v + 180.0) % 360.0 - 180.0 if abs(v) > 180 else v
    return f"{abs(v):g}°{'E' if v > 0 else 'W' if v < 0 else ''}"


def _lat_fmt(v: float, _pos: int) -> str:
    return f"{abs(v):g}°{'N' if v > 0 else 'S' if v < 0 else ''}"


def _class_names(codes: np.ndarray, classes: Mapping[int, str] | None) -> list[str]:
    known = classes or {}
    return [f"{c}: {known.get(int(c), f'class {int(c)}')}" for c in codes]


def _stretch_note(data: np.ndarray, stretch: Stretch, bbox: BBox, floor: float | None) -> str:
    """``Colour scale: square-root, 0 to 164.2 (minimum to maximum); maximum 164.2 at
    34.52° N, 78.30° W.``"""
    rows, cols = data.shape
    peak = int(np.nanargmax(data))
    r, c = divmod(peak, cols)
    w, s, e, n = bbox
    lon = w + (c + 0.5) * (e - w) / cols
    lat = n - (r + 0.5) * (n - s) / rows
    where = (
        f"{abs(lat):.2f}° {'N' if lat >= 0 else 'S'}, {abs(lon):.2f}° {'E' if lon >= 0 else 'W'}"
    )
    if float(np.nanmin(data)) == float(np.nanmax(data)):
        return (
            f"Uniform field: every pixel is {stretch.vmax - (stretch.vmax - stretch.vmin) / 2:.6g}."
        )
    low = "minimum" if floor is None else "fixed floor"
    return (
        f"Colour scale: {stretch.name}, {stretch.vmin:.4g} to {stretch.vmax:.4g} ({low} to "
        f"maximum; nothing clipped at the top); maximum {stretch.vmax:.4g} at {where}."
    )


def render_map(values: np.ndarray, fig_spec: MapFigure, path: Path) -> Rendered:
    """Draw ``values`` (rows, cols; NaN = no data) as a map figure into ``path`` (PNG)."""
    import matplotlib
    from matplotlib import colors
    from matplotlib import image as mpl_image
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    arr = np.asarray(values)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"a map needs a non-empty (rows, cols) array, got shape {arr.shape}")
    w, s, e, n = fig_spec.bbox
    categorical = fig_spec.classes is not None
    data = np.asarray(arr, dtype=np.float64)
    stretch = None if categorical else choose_stretch(data, fig_spec.floor)
    notes = list(fig_spec.notes)
    if stretch is not None:
        notes.append(_stretch_note(data, stretch, fig_spec.bbox, fig_spec.floor))
    if fig_spec.lines_source:
        notes.append(f"Outlines: {fig_spec.lines_source}.")
    mid = math.radians((s + n) / 2.0)
    aspect = 1.0 / max(math.cos(mid), 0.05)  # degrees of lon and lat at equal ground length
    ratio = max(n - s, 1e-9) * aspect / max(e - w, 1e-9)  # map height / width
    map_w = _MAP_W_IN
    map_h = map_w * ratio
    if map_h > _MAP_H_MAX_IN or map_h < _MAP_H_MIN_IN:  # tall or flat: fit the other side
        map_h = float(np.clip(map_h, _MAP_H_MIN_IN, _MAP_H_MAX_IN))
        map_w = min(map_h / ratio, _MAP_W_IN)
    below_in = 0.75 + 0.17 * len(notes)  # x labels, then one line per note
    above_in = 0.85  # title and subtitle
    fig_h = below_in + map_h + above_in
    fig_w = max(6.5, _LEFT_IN + map_w + (2.6 if categorical else 1.8))
    fig = Figure(figsize=(fig_w, fig_h), dpi=_DPI, facecolor="white")
    ax = fig.add_axes((_LEFT_IN / fig_w, below_in / fig_h, map_w / fig_w, map_h / fig_h))
    ax.set_facecolor("#d9d9d9")  # no data: light grey, said in the caption
    extent = (w, e, s, n)
    if stretch is None:
        codes = np.unique(data[np.isfinite(data)]).astype(np.int64)
        palette = matplotlib.colormaps["tab20" if codes.size > 10 else "tab10"]
        known = fig_spec.class_colours or {}
        listed = colors.ListedColormap(
            [known.get(int(c), palette(i)) for i, c in enumerate(codes)] or [palette(0)]
        )
        index = np.full(data.shape, np.nan)
        for i, c in enumerate(codes):
            index[data == c] = i
        ax.imshow(
            np.ma.masked_invalid(index), extent=extent, origin="upper", cmap=listed,
            vmin=-0.5, vmax=max(codes.size, 1) - 0.5, interpolation="nearest",
            aspect=aspect,
        )  # fmt: skip
        handles = [
            Patch(facecolor=listed(i), edgecolor="black", linewidth=0.4, label=name)
            for i, name in enumerate(_class_names(codes, fig_spec.classes))
        ]
        ax.legend(
            handles=handles, title=fig_spec.quantity, loc="upper left",
            bbox_to_anchor=(1.02, 1.0), fontsize=8, title_fontsize=8, frameon=False,
        )  # fmt: skip
    else:
        norm: colors.Normalize = (
            colors.Normalize(stretch.vmin, stretch.vmax)
            if stretch.gamma == 1.0
            else colors.PowerNorm(stretch.gamma, stretch.vmin, stretch.vmax)
        )
        image = ax.imshow(
            np.ma.masked_invalid(data), extent=extent, origin="upper",
            cmap=fig_spec.cmap, norm=norm, interpolation="nearest", aspect=aspect,
        )  # fmt: skip
        below = fig_spec.floor is not None and bool(np.nanmin(data) < fig_spec.floor)
        cax = ax.inset_axes((1.04, 0.0, 0.04, 1.0))
        bar = fig.colorbar(image, cax=cax, extend="min" if below else "neither")
        bar.set_label(fig_spec.quantity)
        ticks = [float(t) for t in bar.get_ticks() if stretch.vmin <= t <= stretch.vmax]
        keep = [t for t in ticks if float(norm(t)) <= 0.94]  # room for the maximum's label
        bar.set_ticks(sorted({*keep, stretch.vmax}))  # the maximum is always labelled
        bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: _tick(v)))
    if fig_spec.outlines is not None and np.any(fig_spec.outlines > 0):
        rows, cols = fig_spec.outlines.shape
        xs = w + (np.arange(cols) + 0.5) * (e - w) / cols
        ys = n - (np.arange(rows) + 0.5) * (n - s) / rows
        ax.contour(
            xs, ys, (fig_spec.outlines > 0).astype(np.float32), levels=[0.5],
            colors="cyan", linewidths=1.0,
        )  # fmt: skip
    for line in fig_spec.lines:
        ax.plot(line[:, 0], line[:, 1], color="black", linewidth=0.7, alpha=0.85)
    ax.set_xlim(w, e)
    ax.set_ylim(s, n)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=max(2, int(map_w / 1.2))))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6))
    ax.xaxis.set_major_formatter(FuncFormatter(_lon_fmt))
    ax.yaxis.set_major_formatter(FuncFormatter(_lat_fmt))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.grid(True, color="white", linewidth=0.4, alpha=0.6)
    ax.tick_params(labelsize=8)
    fig.text(0.02, 1.0 - 0.12 / fig_h, fig_spec.title, fontsize=12, fontweight="bold",
             ha="left", va="top")  # fmt: skip
    fig.text(0.02, 1.0 - 0.42 / fig_h, fig_spec.subtitle, fontsize=9, ha="left", va="top",
             wrap=True)  # fmt: skip
    for i, note in enumerate(notes):
        fig.text(0.02, (0.1 + 0.17 * (len(notes) - 1 - i)) / fig_h, note,
                 fontsize=7.5, ha="left", color="#333333")  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # lays out the axes (aspect), so the frame is where drawn
    width_px, height_px = (round(float(v) * _DPI) for v in fig.get_size_inches())
    pos = ax.get_position()
    frame = (
        round(float(pos.x0) * width_px),
        round((1.0 - float(pos.y1)) * height_px),
        round(float(pos.x1) * width_px),
        round((1.0 - float(pos.y0)) * height_px),
    )
    meta = {
        "Title": f"{fig_spec.title} | {fig_spec.subtitle}",
        "Description": "; ".join([fig_spec.quantity, *notes]),
        "Software": "gravitas (matplotlib)",
        "Source": fig_spec.source,
        "gravitas:bbox": ",".join(f"{v:.6f}" for v in fig_spec.bbox),
        "gravitas:frame": ",".join(str(v) for v in frame),
        "gravitas:kind": "classes" if categorical else "continuous",
        "gravitas:quantity": fig_spec.quantity,
    }
    if stretch is not None:
        meta |= {
            "gravitas:vmin": repr(stretch.vmin),
            "gravitas:vmax": repr(stretch.vmax),
            "gravitas:stretch": stretch.name,
            "gravitas:cmap": fig_spec.cmap,
        }
    # the canvas drawn above is the figure savefig would draw again (same dpi, white
    # face, no bbox cropping): write its pixels as savefig does, without a second draw
    mpl_image.imsave(
        path, canvas.buffer_rgba(), format="png", origin="upper", dpi=_DPI, metadata=meta
    )  # fmt: skip
    return Rendered(path, stretch, (width_px, height_px), frame)
