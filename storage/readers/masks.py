"""Quality-mask conventions: which pixel values of a mask band hide the data bands.

======================  ===============================================================
convention              pixels masked
======================  ===============================================================
``fmask``               Fmask classes other than 0 clear land and 1 clear water (2 cloud
                        shadow, 3 snow, 4 cloud, 255 fill)
``qa_pixel``            Landsat Collection 2 ``QA_PIXEL`` bits 0-5 (fill, dilated cloud,
                        cirrus, cloud, cloud shadow, snow)
``hls_fmask``           HLS v2 ``Fmask`` bits 0-3 (cirrus, cloud, adjacent, shadow) and 255
``scl``                 Sentinel-2 scene classes 0 no data, 1 saturated, 3 cloud shadow,
                        8/9 cloud, 10 cirrus
``valid_nonzero``       value 0 (a mask where 1 means valid)
``valid_zero``          any value but 0 (a mask where 1 means cloud)
======================  ===============================================================
"""

from __future__ import annotations

from typing import get_args

import numpy as np

from gravitas.schemas.errors import InputError
from gravitas.schemas.events import MaskConvention

__all__ = ["CLASS_LEGENDS", "MASK_CONVENTIONS", "MaskConvention", "legend_of", "masked_pixels"]

MASK_CONVENTIONS: tuple[str, ...] = get_args(MaskConvention)

FMASK_CLEAR = (0, 1)
_SCL_BAD = (0, 1, 3, 8, 9, 10)

CLASS_LEGENDS: dict[str, dict[int, str]] = {
    "fmask": {0: "clear land", 1: "clear water", 2: "cloud shadow", 3: "snow", 4: "cloud",
              255: "fill"},
    "scl": {0: "no data", 1: "saturated or defective", 2: "dark area", 3: "cloud shadow",
            4: "vegetation", 5: "not vegetated", 6: "water", 7: "unclassified",
            8: "cloud (medium probability)", 9: "cloud (high probability)",
            10: "thin cirrus", 11: "snow or ice"},
}  # fmt: skip
"""Class names of the categorical conventions with classes (not bit flags)."""


def masked_pixels(mask: np.ndarray, convention: str, href: str = "mask") -> np.ndarray:
    """Boolean array: True where ``mask`` hides the data under ``convention``."""
    if convention not in MASK_CONVENTIONS:
        raise InputError(
            f"unknown mask convention {convention!r} for {href}; use one of "
            f"{', '.join(MASK_CONVENTIONS)}"
        )
    if mask.dtype.kind == "f":
        finite = np.isfinite(mask)
        if not np.array_equal(mask[finite], np.round(mask[finite])):
            raise InputError(
                f"mask {href} holds fractional values; a {convention} mask holds integer "
                "classes or flags"
            )
        ints = np.where(finite, mask, 255).astype(np.int64)
    elif mask.dtype.kind in "iub":
        ints = mask.astype(np.int64)
    else:
        raise InputError(f"mask {href} has dtype {mask.dtype}; a mask holds integers")
    if convention == "fmask":
        return ~np.isin(ints, FMASK_CLEAR)
    if convention == "qa_pixel":
        return (ints & 0b111111) != 0
    if convention == "hls_fmask":
        return ((ints & 0b1111) != 0) | (ints == 255)
    if convention == "scl":
        return np.isin(ints, _SCL_BAD)
    if convention == "valid_nonzero":
        return ints == 0
    return ints != 0


def legend_of(layer: str) -> dict[int, str] | None:
    """Class names of a categorical layer from its band (``ls_fmask`` -> the Fmask
    classes, ``s2_scl`` -> the Sentinel-2 scene classes); None when its band has no known
    classes (bit-flag QA bands, labels: show their values)."""
    band = layer.rsplit("_", 1)[-1].lower()
    key = {"fmask": "fmask", "cfmask": "fmask", "scl": "scl"}.get(band)
    return dict(CLASS_LEGENDS[key]) if key else None
