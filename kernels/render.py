"""Colour ramps and the colour bar under every quicklook PNG (CLI and agents).

A quicklook without a scale only shows where values are high; the bar says how high:
the ramp, the values at its ends and middle, and what they measure.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["GREY", "INFERNO", "VIRIDIS", "colour_bar", "ramp"]

VIRIDIS = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], np.float64
)
"""Viridis at 0, .25, .5, .75, 1 (fields such as rain or temperature)."""
INFERNO = np.array(
    [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], np.float64
)
"""Inferno at 0, .25, .5, .75, 1 (enhancements that start at zero)."""

GREY = np.array([[0, 0, 0], [255, 255, 255]], np.float64)
"""Black to white (single bands of imagery)."""

_BAR_HEIGHT = 14
_MARGIN = 8


def ramp(norm: np.ndarray, anchors: np.ndarray = VIRIDIS) -> np.ndarray:
    """RGB uint8 of values in [0, 1] interpolated between ``anchors``."""
    pos = np.linspace(0.0, 1.0, len(anchors))
    rgb = np.stack([np.interp(norm, pos, anchors[:, i]) for i in range(3)], axis=-1)
    return rgb.astype(np.uint8)


@functools.cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font (no system fonts needed), loaded once."""
    return ImageFont.load_default(size=12)


def _label(value: float) -> str:
    """``3530``, ``12.5``, ``0.00412``: whole numbers from 100 up, else 3 digits."""
    return f"{value:.0f}" if 100 <= abs(value) < 1e6 else f"{value:.3g}"


def colour_bar(
    image: Image.Image, lo: float, hi: float, title: str, anchors: np.ndarray = VIRIDIS
) -> Image.Image:
    """``image`` with a colour bar below it: the ramp from ``lo`` to ``hi`` with three
    value labels, and ``title`` (what the colours measure, with units)."""
    font = _font()
    width = max(image.width, 240, int(font.getlength(title)) + 2 * _MARGIN)
    bar_width = width - 2 * _MARGIN
    text_height = 14
    height = image.height + _MARGIN + _BAR_HEIGHT + 4 + text_height + 4 + text_height + _MARGIN
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    canvas.paste(image.convert("RGB"), ((width - image.width) // 2, 0))
    strip = ramp(np.tile(np.linspace(0.0, 1.0, bar_width), (_BAR_HEIGHT, 1)), anchors)
    top = image.height + _MARGIN
    canvas.paste(Image.fromarray(strip, "RGB"), (_MARGIN, top))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle(
        (_MARGIN - 1, top - 1, _MARGIN + bar_width, top + _BAR_HEIGHT), outline=(0, 0, 0)
    )
    y = top + _BAR_HEIGHT + 4
    for frac, anchor in ((0.0, "la"), (0.5, "ma"), (1.0, "ra")):
        x = _MARGIN + frac * (bar_width - 1)
        draw.text((x, y), _label(lo + frac * (hi - lo)), fill=(0, 0, 0), font=font, anchor=anchor)
    draw.text((width / 2, y + text_height + 4), title, fill=(0, 0, 0), font=font, anchor="ma")
    return canvas
