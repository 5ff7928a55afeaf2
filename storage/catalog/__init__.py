"""The STAC catalog: collections and versioned items with search.

``open_catalog(url, node_id)`` returns a :class:`Catalog`: SQLite (embedded default) or
PostgreSQL + pgstac. :mod:`~gravitas.storage.catalog.items` builds items from files.
"""

from gravitas.storage.catalog.base import (
    NODE_PROPERTY,
    Catalog,
    SearchPage,
    SearchParams,
    SortField,
)
from gravitas.storage.catalog.errors import (
    CatalogError,
    CollectionNotFoundError,
    InvalidItemError,
    InvalidSearchError,
    ItemBuildError,
    ItemNotFoundError,
    UnsupportedFilterError,
)

__all__ = [
    "NODE_PROPERTY",
    "Catalog",
    "CatalogError",
    "CollectionNotFoundError",
    "InvalidItemError",
    "InvalidSearchError",
    "ItemBuildError",
    "ItemNotFoundError",
    "SearchPage",
    "SearchParams",
    "SortField",
    "UnsupportedFilterError",
]
