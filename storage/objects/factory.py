"""``open_object_store(url)``: pick the backend from a URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from gravitas.schemas.errors import ConfigError
from gravitas.storage.objects.base import ObjectStore

__all__ = ["open_object_store"]


def open_object_store(
    url: str | Path,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> ObjectStore:
    """Open ``file:///dir`` (or a plain directory path) or ``s3://bucket/prefix?endpoint=h:p``.

    S3 credentials: the arguments, else ``GRAVITAS_S3_ACCESS_KEY`` /
    ``GRAVITAS_S3_SECRET_KEY``.
    """
    from gravitas.storage.objects.local import LocalObjectStore

    if isinstance(url, Path):
        return LocalObjectStore(url)
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"expected file:///absolute/dir, got {url!r}")
        return LocalObjectStore(unquote(parts.path))
    if parts.scheme == "s3":
        from gravitas.storage.objects.s3 import S3ObjectStore

        return S3ObjectStore(url, access_key=access_key, secret_key=secret_key)
    if parts.scheme == "":
        return LocalObjectStore(url)
    raise ConfigError(
        f"unknown object store URL {url!r}; use file:///dir or s3://bucket/prefix?endpoint=host:port"
    )
