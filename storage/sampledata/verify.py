"""sha256 digests of files and trees, and the per-source manifest kept in the cache.

The manifest (``manifest.json`` in a source's cache folder) records the sha256 of every
extracted file so a later fetch can tell a damaged cache from a good one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gravitas.storage.sampledata.errors import SampleDataError

MANIFEST = "manifest.json"
_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(entries: Iterable[tuple[str, str]]) -> str:
    """One sha256 over ``(relative path, file sha256)`` pairs, order-independent.

    Pins a directory sample: any added, missing, renamed or changed file changes it.
    """
    h = hashlib.sha256()
    for rel, digest in sorted(entries):
        h.update(f"{rel}\t{digest}\n".encode())
    return h.hexdigest()


def write_manifest(folder: Path, data: Mapping[str, Any]) -> None:
    """Write ``manifest.json`` into a (not yet published) source folder."""
    (folder / MANIFEST).write_text(json.dumps(data, indent=1, sort_keys=True))


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read a source folder's manifest; a missing or broken one is a SampleDataError."""
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SampleDataError(
            f"cache manifest {path} is missing or unreadable ({exc}); delete {folder} "
            "and fetch again"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise SampleDataError(f"cache manifest {path} has no 'files' table; delete {folder}")
    return data
