"""Quicklook map figures: opened as PNGs and checked (size, data area, labels, stretch)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

from gravitas.kernels.mapfigure import (
    FMASK_CLASSES,
    MapFigure,
    choose_stretch,
    is_categorical,
    render_map,
)
from gravitas.storage.basemap import basemap

BOX = (-80.7, 32.3, -74.8, 37.7)


def _rain() -> np.ndarray:
    rng = np.random.default_rng(0)
    arr = rng.gamma(0.5, 5.0, (120, 140))
    arr[60, 70] = 164.0  # one peak far above the rest (the Florence case)
    arr[:10, :] = np.nan  # no data along the top
    return arr


def _frame(img: Image.Image) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (int(v) for v in img.text["gravitas:frame"].split(","))
    return x0, y0, x1, y1


def test_continuous_map_is_a_placed_figure(tmp_path: Path) -> None:
    base = basemap(BOX)
    assert "United States of America" in base.countries and base.lines
    spec = MapFigure(
        title="stageiv", subtitle="United States; maximum of 23 time steps",
        quantity="precipitation (kg m-2)", bbox=BOX, lines=base.lines,
        lines_source=base.source,
    )  # fmt: skip
    out = render_map(_rain(), spec, tmp_path / "rain.png")
    with Image.open(out.path) as img:
        assert img.size == out.size and img.size[0] >= 600 and img.size[1] >= 500
        text = dict(img.text)
        rgb = np.asarray(img.convert("RGB")).astype(int)
    # the text chunks say what was drawn
    assert text["Title"].startswith("stageiv | United States; maximum of 23 time steps")
    assert text["gravitas:quantity"] == "precipitation (kg m-2)"
    assert float(text["gravitas:vmax"]) == 164.0  # nothing clipped at the top
    assert text["gravitas:stretch"] == "square-root"  # skewed: the weak values stay visible
    assert "Natural Earth" in text["Description"]
    # the map frame is mostly data (not padding): non-grey, non-white pixels
    x0, y0, x1, y1 = _frame(Image.open(out.path))
    inside = rgb[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2]
    grey = np.all(np.abs(inside - 217) <= 2, axis=-1)  # the no-data face colour
    white = np.all(inside >= 250, axis=-1)
    assert (~grey & ~white).mean() > 0.8
    # the peak pixel has the colour map's top colour
    top = (np.array(matplotlib.colormaps["viridis"](1.0)[:3]) * 255).round().astype(int)
    assert np.any(np.all(np.abs(inside - top) <= 1, axis=-1))
    # axis labels and ticks are drawn: the band under the frame is not blank
    band = rgb[y1 + 4 : y1 + 40, x0:x1]
    assert band.std() > 10
    left = rgb[y0:y1, max(x0 - 60, 0) : x0 - 4]
    assert left.std() > 10


def test_categorical_map_gets_a_legend(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    codes = rng.choice([0, 1, 4, 255], (40, 40)).astype(np.float64)
    assert is_categorical(codes) and not is_categorical(_rain())
    spec = MapFigure(
        title="fmask", subtitle="x", quantity="Fmask class", bbox=(-106.93, 40.28, -106.90, 40.30),
        classes=FMASK_CLASSES,
    )  # fmt: skip
    out = render_map(codes, spec, tmp_path / "mask.png")
    with Image.open(out.path) as img:
        assert img.text["gravitas:kind"] == "classes"
        assert "gravitas:stretch" not in img.text  # no ramp, no percent stretch
    assert out.stretch is None


def test_stretch_keeps_extremes_and_uniform_fields() -> None:
    s = choose_stretch(np.array([1.0, 2.0, 3.0, np.nan]))
    assert (s.vmin, s.vmax, s.gamma) == (1.0, 3.0, 1.0)
    flat = choose_stretch(np.full((4, 4), 261.5))  # one ERA5 cell over a small bbox
    assert flat.vmin < 261.5 < flat.vmax  # mid colour, not black
    assert choose_stretch(np.array([-50.0, 10.0, 4000.0]), floor=0.0).vmin == 0.0
