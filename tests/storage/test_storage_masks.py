"""Mask conventions: which values hide pixels (known QA values of each product)."""

from __future__ import annotations

import numpy as np
import pytest

from gravitas.schemas.errors import InputError
from gravitas.storage.readers.masks import legend_of, masked_pixels
from gravitas.storage.readers.names import mask_convention_of


@pytest.mark.parametrize(
    ("convention", "clear", "hidden"),
    [
        ("fmask", [0, 1], [2, 3, 4, 255]),
        # Landsat C2 QA_PIXEL: 21824 clear land, 21952 clear water; 1 fill, 22280 cloud,
        # 23888 cloud shadow, 30048 snow, 55052 cirrus + cloud
        ("qa_pixel", [21824, 21952], [1, 22280, 23888, 30048, 55052]),
        # HLS v2 Fmask bits: 0 clear, 32 water, 64/128 aerosol; 2 cloud, 8 shadow, 4 adjacent
        ("hls_fmask", [0, 32, 64, 128], [1, 2, 4, 8, 255]),
        ("scl", [2, 4, 5, 6, 7, 11], [0, 1, 3, 8, 9, 10]),
        ("valid_nonzero", [1, 7], [0]),
        ("valid_zero", [0], [1, 4]),
    ],
)
def test_conventions(convention: str, clear: list[int], hidden: list[int]) -> None:
    values = np.array(clear + hidden, np.uint16)
    got = masked_pixels(values, convention)
    assert got.tolist() == [False] * len(clear) + [True] * len(hidden)


def test_bad_masks_are_refused() -> None:
    with pytest.raises(InputError, match="'bogus'"):
        masked_pixels(np.zeros(3, np.uint8), "bogus")
    with pytest.raises(InputError, match="fractional"):
        masked_pixels(np.array([0.5, 1.0]), "fmask")


def test_names_tell_the_convention_and_legend() -> None:
    assert mask_convention_of("fmask", "LE70350322008118EDC00") == "fmask"
    assert mask_convention_of("fmask", "HLS.L30.T17SLU.2020209T160031.v2.0") == "hls_fmask"
    assert mask_convention_of("qa_pixel") == "qa_pixel" and mask_convention_of("b4") is None
    assert legend_of("ls7_fmask") == {0: "clear land", 1: "clear water", 2: "cloud shadow",
                                      3: "snow", 4: "cloud", 255: "fill"}  # fmt: skip
    assert legend_of("ls7_b4") is None
