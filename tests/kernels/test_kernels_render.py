"""The colour bar under quicklooks: the ramp, three value labels and a title."""

from __future__ import annotations

import numpy as np
from PIL import Image

from gravitas.kernels.render import GREY, INFERNO, VIRIDIS, colour_bar, ramp


def test_ramp_ends_on_its_anchors() -> None:
    rgb = ramp(np.array([0.0, 1.0]), VIRIDIS)
    assert rgb.tolist() == [[68, 1, 84], [253, 231, 37]]
    assert ramp(np.array([0.5]), GREY).tolist() == [[127, 127, 127]]


def test_colour_bar_adds_the_ramp_and_text_below_the_image() -> None:
    image = Image.fromarray(np.full((100, 300, 3), 10, np.uint8))
    out = colour_bar(image, 0.0, 3530.0, "CH4 enhancement (ppm m)", INFERNO)
    assert out.width == 300 and out.height > 140
    px = np.asarray(out)
    assert (px[:100] == 10).all()  # the image itself is untouched, on top
    bar_row = px[100 + 8 + 7, 8:292]  # the middle row of the bar
    assert bar_row[0].tolist() == [0, 0, 4] and bar_row[-1].tolist() == [252, 255, 164]
    text = px[100 + 8 + 14 + 4 :]
    assert (text < 128).any()  # dark label text drawn on the white margin
    small = colour_bar(Image.fromarray(np.zeros((20, 40), np.uint8)), -1.0, 1.0, "t", GREY)
    assert small.width >= 240  # room for the labels under a tiny image
