"""Object store in a local directory (the embedded default).

Writes go to a temporary file in the same directory and are renamed into place, so a
reader never sees half an object. The SHA-256 is computed when asked (``stat``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gravitas.schemas.errors import UnsafePathError
from gravitas.storage.objects.base import ObjectStat
from gravitas.storage.objects.errors import ObjectNotFoundError, ObjectStoreError
from gravitas.storage.objects.keys import check_key, check_prefix

__all__ = ["LocalObjectStore", "sha256_file"]

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class LocalObjectStore:
    """An :class:`~gravitas.storage.objects.base.ObjectStore` rooted at one directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ObjectStoreError(
                f"cannot create object store directory {self.root}: {exc}"
            ) from exc
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = self.root / check_key(key)
        # symlinks inside the store must not lead outside it
        if not path.resolve().is_relative_to(self.root):
            raise UnsafePathError(f"object key {key!r} resolves outside the store {self.root}")
        return path

    def _existing(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFoundError(f"no object {key!r} in {self.url}")
        return path

    def _write(self, key: str, fill: bytes | Path) -> ObjectStat:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(fill, bytes):
                    out.write(fill)
                else:
                    with fill.open("rb") as src:
                        shutil.copyfileobj(src, out, _CHUNK)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.stat(key)

    def put_file(self, key: str, path: str | Path) -> ObjectStat:
        if not Path(path).is_file():
            raise ObjectNotFoundError(f"cannot upload {path}: not a file")
        return self._write(key, Path(path))

    def put_bytes(self, key: str, data: bytes) -> ObjectStat:
        return self._write(key, bytes(data))

    def get_bytes(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if offset < 0 or (length is not None and length < 0):
            raise ValueError(f"offset and length must be >= 0, got {offset}, {length}")
        with self._existing(key).open("rb") as f:
            f.seek(offset)
            return f.read() if length is None else f.read(length)

    def download(self, key: str, path: str | Path) -> Path:
        dest = Path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._existing(key), dest)
        return dest

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[str]:
        check_prefix(prefix)
        keys = []
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def href(self, key: str) -> str:
        return self._path(key).as_uri()

    def size(self, key: str) -> int:
        return self._existing(key).stat().st_size

    def stat(self, key: str) -> ObjectStat:
        path = self._existing(key)
        return ObjectStat(key, path.stat().st_size, sha256_file(path))
