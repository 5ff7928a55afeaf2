"""Extract selected members of a wheel (zip), sdist (tar.gz) or Debian data tar, safely.

Only regular files whose archive path matches one of the globs are written; absolute
paths, ``..`` components, links and device files are refused, so a hostile archive can
not write outside the target folder.
"""

from __future__ import annotations

import fnmatch
import hashlib
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from gravitas.schemas.errors import UnsafePathError
from gravitas.storage.sampledata.errors import SampleDataError

_CHUNK = 1 << 20


def normalize_member(name: str) -> str:
    """Archive member name without a leading ``./``; raises on unsafe paths."""
    while name.startswith("./"):
        name = name[2:]
    path = PurePosixPath(name)
    if name.startswith("/") or "\\" in name or any(p in ("..", "") for p in path.parts):
        raise UnsafePathError(f"archive member {name!r} escapes the target folder; refusing it")
    return str(path)


def matches(name: str, patterns: Iterable[str]) -> bool:
    """True when the member path matches any glob."""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _write(stream: IO[bytes], dest_root: Path, rel: str) -> str:
    """Copy a member stream to ``dest_root/rel``, returning its sha256."""
    target = (dest_root / rel).resolve()
    if not target.is_relative_to(dest_root.resolve()):
        raise UnsafePathError(f"archive member {rel!r} resolves outside {dest_root}")
    target.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    with target.open("wb") as out:
        while chunk := stream.read(_CHUNK):
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest()


def _zip_members(archive: Path) -> Iterator[tuple[str, zipfile.ZipFile, zipfile.ZipInfo]]:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if not info.is_dir():
                yield info.filename, zf, info


def extract_members(archive: Path, patterns: Iterable[str], dest: Path) -> dict[str, str]:
    """Extract the members matching ``patterns`` into ``dest``; return {path: sha256}.

    ``archive`` is a ``.whl``/``.zip`` or any tar (``.tar.gz``, a Debian data tar).
    """
    pats = list(patterns)
    out: dict[str, str] = {}
    try:
        if zipfile.is_zipfile(archive):
            for name, zf, info in _zip_members(archive):
                rel = normalize_member(name)
                if matches(rel, pats):
                    with zf.open(info) as src:
                        out[rel] = _write(src, dest, rel)
        else:
            with tarfile.open(archive) as tf:
                for member in tf:
                    if not member.name.strip("./") or member.isdir():
                        continue
                    rel = normalize_member(member.name)
                    if not matches(rel, pats):
                        continue
                    if not member.isreg():
                        raise UnsafePathError(
                            f"archive member {rel!r} in {archive.name} is a link or device, "
                            "not a regular file; refusing it"
                        )
                    stream = tf.extractfile(member)
                    if stream is None:
                        raise SampleDataError(f"cannot read member {rel!r} of {archive.name}")
                    with stream:
                        out[rel] = _write(stream, dest, rel)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise SampleDataError(f"cannot extract {archive}: {exc}") from exc
    return out
