"""The object store contract (COGs, NetCDF, Zarr chunks): :class:`ObjectStore`.

Keys are relative, '/'-separated names checked by :mod:`.keys`; a key can never reach
outside the store's directory or bucket prefix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["ObjectStat", "ObjectStore"]


@dataclass(frozen=True)
class ObjectStat:
    """Size and content hash of one stored object."""

    key: str
    size: int
    """Bytes."""
    sha256: str
    """Lowercase hex SHA-256 of the content."""


@runtime_checkable
class ObjectStore(Protocol):
    """A flat namespace of immutable-ish byte objects (local directory or S3 bucket)."""

    url: str
    """Where the store lives (``file:///dir`` or ``s3://bucket/prefix?endpoint=...``)."""

    def put_file(self, key: str, path: str | Path) -> ObjectStat:
        """Upload a local file (multipart on S3 for large files); returns its stat."""
        ...

    def put_bytes(self, key: str, data: bytes) -> ObjectStat:
        """Store ``data`` under ``key``; returns its stat."""
        ...

    def get_bytes(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        """The object's bytes, or ``length`` bytes from ``offset`` (ranged read)."""
        ...

    def download(self, key: str, path: str | Path) -> Path:
        """Copy the object to a local file; returns the path."""
        ...

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds an object."""
        ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix``, in lexicographic order."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error if missing)."""
        ...

    def href(self, key: str) -> str:
        """Absolute href of ``key``: ``file:///...`` or ``s3://bucket/...``."""
        ...

    def size(self, key: str) -> int:
        """Bytes of ``key`` without reading it; ObjectNotFoundError if missing."""
        ...

    def stat(self, key: str) -> ObjectStat:
        """Size and SHA-256 of ``key``; ObjectNotFoundError if missing."""
        ...
