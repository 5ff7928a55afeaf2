"""Filter matched scene pairs: overlap for a whole patch, nodata, cloud, property tests.

Each dropped pair is counted once, under the first test it fails, in this order:
overlap, nodata, cloud, property filter. A threshold whose property a scene lacks
passes (unknown is not bad); a property filter on a missing property fails.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gravitas.kernels.datacube.errors import BadParameterError
from gravitas.kernels.datacube.match import ScenePair

__all__ = ["DropReport", "check_properties", "filter_pairs"]

CLOUD_KEY = "eo:cloud_cover"
"""STAC eo extension: cloud cover in percent (0..100)."""
NODATA_KEY = "nodata_fraction"
"""Fraction (0..1) of the scene's pixels that are nodata."""

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}


@dataclass(frozen=True)
class DropReport:
    """How many pairs were kept, and how many were dropped for which reason."""

    kept: int
    dropped: dict[str, int] = field(default_factory=dict)
    """Readable reason -> number of pairs dropped for it."""

    @property
    def total_dropped(self) -> int:
        """Number of dropped pairs."""
        return sum(self.dropped.values())

    def __str__(self) -> str:
        lines = [f"kept {self.kept}, dropped {self.total_dropped}"]
        lines += [f"  {n} x {reason}" for reason, n in sorted(self.dropped.items())]
        return "\n".join(lines)


def _threshold(value: float | Mapping[str, float | None] | None, name: str) -> float | None:
    if isinstance(value, Mapping):
        return value.get(name)
    return value


def check_properties(properties: Mapping[str, Any], where: Mapping[str, Any]) -> str | None:
    """Test ``properties`` against a comparison dict; the failure reason, or None.

    ``where`` maps a property to a value (equality) or to ``{op: value}`` with ``op`` in
    ``== != < <= > >= in, not in``; several ops must all hold:
    ``{"platform": "sentinel-2a", "view:off_nadir": {"<": 10}}``.
    """
    for key, cond in where.items():
        tests = cond if isinstance(cond, Mapping) else {"==": cond}
        for op, ref in tests.items():
            fn = _OPS.get(op)
            if fn is None:
                raise BadParameterError(
                    f"unknown comparison {op!r} for property {key!r}; use one of {sorted(_OPS)}"
                )
            if key not in properties:
                return f"property {key} missing"
            try:
                ok = bool(fn(properties[key], ref))
            except TypeError:
                ok = False
            if not ok:
                return f"property {key} {op} {ref!r} failed"
    return None


def _reason(
    pair: ScenePair,
    need_deg: float,
    max_nodata: float | Mapping[str, float | None] | None,
    max_cloud: float | Mapping[str, float | None] | None,
    where: Mapping[str, Mapping[str, Any]],
) -> str | None:
    w, s, e, n = pair.bbox
    slack = need_deg * 1e-9  # float noise in bbox arithmetic
    if e - w < need_deg - slack or n - s < need_deg - slack:
        return f"overlap smaller than one patch ({need_deg:g} deg square)"
    scenes = pair.scenes()
    for name, scene in scenes.items():
        limit = _threshold(max_nodata, name)
        value = scene.properties.get(NODATA_KEY)
        if limit is not None and value is not None and float(value) > limit:
            return f"{name}: {NODATA_KEY} above {limit:g}"
    for name, scene in scenes.items():
        limit = _threshold(max_cloud, name)
        value = scene.properties.get(CLOUD_KEY)
        if limit is not None and value is not None and float(value) > limit:
            return f"{name}: {CLOUD_KEY} above {limit:g}"
    for name, scene in scenes.items():
        failed = check_properties(scene.properties, where.get(name, {}))
        if failed is not None:
            return f"{name}: {failed}"
    return None


def filter_pairs(
    pairs: Sequence[ScenePair],
    *,
    pixel_size_deg: float,
    patch_size: int = 224,
    max_nodata_fraction: float | Mapping[str, float | None] | None = None,
    max_cloud_cover: float | Mapping[str, float | None] | None = None,
    where: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[ScenePair], DropReport]:
    """Keep the pairs good enough for at least one patch; report why the others went.

    The common bbox must be at least ``patch_size * pixel_size_deg`` wide and high.
    Thresholds are one number for every scene or one per modality name (``None`` = no
    test); ``max_cloud_cover`` is in percent like ``eo:cloud_cover``. ``where`` maps a
    modality name to a comparison dict (see :func:`check_properties`).
    """
    if not pixel_size_deg > 0:
        raise BadParameterError(f"pixel_size_deg must be > 0, got {pixel_size_deg}")
    if patch_size < 1:
        raise BadParameterError(f"patch_size must be >= 1 pixel, got {patch_size}")
    need = patch_size * pixel_size_deg
    kept: list[ScenePair] = []
    dropped: dict[str, int] = {}
    for pair in pairs:
        reason = _reason(pair, need, max_nodata_fraction, max_cloud_cover, where or {})
        if reason is None:
            kept.append(pair)
        else:
            dropped[reason] = dropped.get(reason, 0) + 1
    return kept, DropReport(len(kept), dropped)
