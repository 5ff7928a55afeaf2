"""Reductions served from the overview pyramids instead of the pixels (filled in below)."""

from __future__ import annotations

from typing import Any


def install(run: Any, registry: Any) -> None:
    """Register pyramid-aware variants (none yet)."""


def try_aggregate(run: Any, data: Any, geometries: Any, node: str) -> Any:
    """Zonal statistics from the pyramid when exact; ``None`` to compute from pixels."""
    return None
