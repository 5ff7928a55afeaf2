"""The values the engine hands back: a result file and validation problems."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GraphResult:
    """The output of one executed process graph.

    ``data`` holds the file's bytes; for results written to disk (large rasters, Zarr)
    ``data`` is empty and ``path`` names the file (the caller owns and deletes it).
    ``format`` is the openEO format name (``GTiff``, ``netCDF``, ``JSON``).
    """

    data: bytes
    media_type: str
    filename: str
    format: str
    path: Path | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    """How it ran: ``seconds``, ``scheduler``, ``served_from_overviews`` (geometries
    answered from the pyramid statistics)."""

    def read(self) -> bytes:
        """The result's bytes, whether held in memory or on disk."""
        return self.path.read_bytes() if self.path is not None else self.data


@dataclass(frozen=True)
class GraphProblem:
    """One thing wrong with a process graph (openEO ``/validation`` lists these)."""

    code: str
    message: str
    node: str | None = None
    argument: str | None = None

    def to_openeo(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}
