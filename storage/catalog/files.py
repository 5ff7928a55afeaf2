"""File facts for STAC assets: absolute hrefs, size and a sha256 multihash."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

from gravitas.storage.catalog.errors import ItemBuildError

__all__ = ["datetime_from_name", "file_info", "href_for", "multihash_sha256"]

_CHUNK = 1 << 20


def href_for(path: Path | str) -> str:
    """An absolute href: ``file:///abs/path`` for local paths, URLs unchanged."""
    text = str(path)
    if re.match(r"^[a-z][a-z0-9+.-]*://", text):
        return text
    return Path(text).resolve().as_uri()


def multihash_sha256(path: Path) -> str:
    """The file's sha256 as a hex multihash (``1220`` + digest), as file:checksum wants."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return "1220" + digest.hexdigest()


def file_info(path: Path, checksum: bool = True) -> dict[str, object]:
    """``file:size`` and (optionally) ``file:checksum`` of a local file."""
    try:
        info: dict[str, object] = {"file:size": path.stat().st_size}
    except OSError as exc:
        raise ItemBuildError(f"cannot stat {path}: {exc}; check the path") from exc
    if checksum:
        info["file:checksum"] = multihash_sha256(path)
    return info


_PATTERNS = (
    (re.compile(r"(?<!\d)(\d{8})T(\d{6})(?!\d)"), "%Y%m%d%H%M%S"),
    (re.compile(r"^L[ETCO]\d\d{6}(\d{7})"), "%Y%j"),
    (re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)"), "%Y-%m-%d"),
    (re.compile(r"(?<!\d)(\d{8})(?!\d)"), "%Y%m%d"),
)


def datetime_from_name(path: Path | str) -> datetime | None:
    """Acquisition time from a file name: ``..._20170216T102101_...`` (Sentinel-2),
    Landsat scene ids (``LE7PPPRRRYYYYDOY...``), ``YYYY-MM-DD`` or ``YYYYMMDD``; the
    standard product names of Landsat, Sentinel-2, MODIS, HLS and EMIT first (see
    :mod:`gravitas.storage.readers.names`)."""
    from gravitas.storage.readers.names import product_time

    name = Path(path).name
    known = product_time(name)
    if known is not None:
        return known
    for pattern, fmt in _PATTERNS:
        m = pattern.search(name)
        if m:
            try:
                return datetime.strptime("".join(m.groups()), fmt).replace(tzinfo=UTC)
            except ValueError:
                continue
    return None
