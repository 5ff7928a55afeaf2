"""The values the engine hands back: a result file and validation problems."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GraphResult:
    """The output of one executed process graph.

    ``data`` holds the file's bytes; for results written to disk (a Zarr store)
    ``data`` is empty and ``path`` names the file or directory (the caller owns it and
    removes it with :meth:`close`). ``format`` is the openEO format name (``GTiff``,
    ``netCDF``, ``JSON``, ``ZARR``). A directory travels as one file through
    :meth:`read` (a ZIP of the tree, as ``zarr.storage.ZipStore`` reads it), named
    :attr:`packed_filename` with :attr:`packed_media_type`.
    """

    data: bytes
    media_type: str
    filename: str
    format: str
    path: Path | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    """How it ran: ``seconds``, ``scheduler``, ``served_from_overviews`` (geometries
    answered from the pyramid statistics)."""

    @property
    def is_tree(self) -> bool:
        """True for a result that is a directory (Zarr)."""
        return self.path is not None and self.format == "ZARR"

    @property
    def packed_filename(self) -> str:
        return f"{self.filename}.zip" if self.is_tree else self.filename

    @property
    def packed_media_type(self) -> str:
        return "application/zip" if self.is_tree else self.media_type

    def read(self) -> bytes:
        """The result's bytes, whether held in memory or on disk (a tree as a ZIP)."""
        if self.path is None:
            return self.data
        if self.path.is_dir():
            from gravitas.agents.graphs.publish import zip_tree

            return zip_tree(self.path)
        return self.path.read_bytes()

    def close(self) -> None:
        """Remove the result's file or directory on disk (nothing for in-memory ones)."""
        import shutil

        if self.path is not None:
            shutil.rmtree(self.path.parent, ignore_errors=True)


@dataclass(frozen=True)
class GraphProblem:
    """One thing wrong with a process graph (openEO ``/validation`` lists these)."""

    code: str
    message: str
    node: str | None = None
    argument: str | None = None

    def to_openeo(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}
