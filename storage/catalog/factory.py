"""``open_catalog(url, node_id)``: pick the catalog backend from a URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from gravitas.schemas.errors import ConfigError
from gravitas.storage.catalog.base import Catalog

__all__ = ["open_catalog"]


def open_catalog(url: str | Path, node_id: str = "local") -> Catalog:
    """Open ``sqlite:///abs/path.sqlite`` (or a plain path; embedded) or
    ``postgresql://user:pw@host:port/db`` (pgstac)."""
    text = str(url)
    scheme = urlsplit(text).scheme
    if isinstance(url, Path) or scheme in ("", "file") or len(scheme) == 1:
        from gravitas.storage.catalog.sqlite import SQLiteCatalog

        path = Path(unquote(urlsplit(text).path)) if scheme == "file" else Path(text)
        return SQLiteCatalog(path, node_id=node_id)
    if scheme == "sqlite":
        from gravitas.storage.catalog.sqlite import SQLiteCatalog

        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ConfigError(f"expected sqlite:///absolute/path.sqlite, got {text!r}")
        return SQLiteCatalog(Path(unquote(parts.path)), node_id=node_id)
    if scheme in ("postgresql", "postgres", "pgstac"):
        from gravitas.storage.catalog.pgstac import PgstacCatalog  # type: ignore[import-not-found,unused-ignore]

        catalog: Catalog = PgstacCatalog(text, node_id=node_id)
        return catalog
    raise ConfigError(
        f"unknown catalog URL {text!r}; use sqlite:///path.sqlite or postgresql://host/db"
    )
