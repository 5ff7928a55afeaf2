"""Errors of the STAC catalog: bad items, bad searches, missing records."""

from __future__ import annotations

from gravitas.schemas.errors import InputError, NotFoundError, RequestError, StorageError


class CatalogError(StorageError):
    """A catalog backend failed or was configured wrongly."""


class CatalogUnavailableError(CatalogError):
    """The catalog's database could not be reached for a while (transient: retry)."""


class InvalidItemError(InputError):
    """A STAC item or collection dict that the catalog cannot store."""


class InvalidSearchError(RequestError):
    """Search parameters (bbox, datetime, limit, token, sortby) that are malformed."""


class UnsupportedFilterError(InvalidSearchError):
    """A CQL2 filter that uses an operator or construct the backend does not evaluate."""


class CollectionNotFoundError(NotFoundError):
    """A collection id that the catalog does not hold."""


class ItemNotFoundError(NotFoundError):
    """An item id that the catalog does not hold in that collection."""


class ItemBuildError(InputError):
    """A file whose metadata cannot be turned into a STAC item."""
