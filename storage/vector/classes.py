"""Categorical class codes: a class field's distinct values -> small ints 1..K (0 = none)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from gravitas.schemas.errors import InputError

__all__ = ["MAX_CLASSES", "class_dtype", "class_key", "class_map"]

MAX_CLASSES = 65_535
"""Most distinct values a class field may have (codes fit in uint16)."""


def class_key(value: Any) -> str:
    """The text a class value is stored under (``1`` and ``"1"`` are the same class)."""
    return str(value)


def class_map(values: Iterable[Any], field: str = "class field") -> dict[str, int]:
    """Codes 1..K for the distinct non-null values, in numeric (or else text) order."""
    distinct = {v for v in values if v is not None}
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in distinct)
    ordered = sorted(distinct) if numeric else sorted(distinct, key=class_key)
    mapping: dict[str, int] = {}
    for value in ordered:
        mapping.setdefault(class_key(value), len(mapping) + 1)
    if len(mapping) > MAX_CLASSES:
        raise InputError(
            f"{field} has {len(mapping)} distinct values (> {MAX_CLASSES}); it is not "
            "categorical: pass it as id_field, or rasterise feature indices instead"
        )
    return mapping


def class_dtype(n: int) -> np.dtype[Any]:
    """Smallest unsigned dtype (rasterio can burn) holding codes 0..n."""
    if n < 256:
        return np.dtype(np.uint8)
    if n < 65_536:
        return np.dtype(np.uint16)
    return np.dtype(np.int32)
