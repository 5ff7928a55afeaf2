"""Tree-shaped results (Zarr stores) in the object store and as one ZIP file.

- :func:`put_tree` writes every file of a directory under ``<prefix>/<relative path>``
  (sorted, so a replay writes the same keys with the same bytes) and returns the total
  size and a SHA-256 over the sorted ``(key, sha256)`` manifest: the result's identity.
- :func:`zip_tree` / :func:`zip_prefix` pack a directory or an object-store prefix into a
  ZIP (stored, not deflated: Zarr chunks are compressed already) whose member names are
  the relative paths, the layout ``zarr.storage.ZipStore`` opens.

Results go under :data:`GRAPHS_PREFIX`, a published prefix
(:data:`gravitas.storage.objects.public.PUBLISHED_PREFIXES`): the edge's asset route
serves each chunk, so a Zarr reader can open the store over HTTP.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gravitas.storage.objects.keys import check_key, check_prefix

GRAPHS_PREFIX = "graphs/"
"""Object-store prefix of published process-graph results (Zarr stores)."""


@dataclass(frozen=True)
class TreeStat:
    prefix: str
    files: int
    size: int
    sha256: str


def _files(root: Path) -> list[tuple[str, Path]]:
    return sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())


def put_tree(store: Any, prefix: str, root: Path) -> TreeStat:
    """Upload the files under ``root`` to ``<prefix>/...``; the manifest's identity."""
    check_key(prefix)
    manifest = hashlib.sha256()
    size = files = 0
    for rel, path in _files(root):
        key = f"{prefix}/{rel}"
        stat = store.put_file(key, path)
        manifest.update(f"{rel}\0{stat.sha256}\n".encode())
        size += stat.size
        files += 1
    return TreeStat(prefix, files, size, manifest.hexdigest())


def zip_tree(root: Path) -> bytes:
    """A directory as ZIP bytes (member names relative to ``root``)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for rel, path in _files(root):
            zf.write(path, rel)
    return buf.getvalue()


def zip_prefix(store: Any, prefix: str) -> bytes:
    """The objects under ``<prefix>/`` as ZIP bytes (member names relative to it)."""
    base = check_prefix(prefix.rstrip("/") + "/")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for key in sorted(store.list(base)):
            zf.writestr(key[len(base) :], store.get_bytes(key))
    return buf.getvalue()
