"""Errors of the object store."""

from __future__ import annotations

from gravitas.schemas.errors import NotFoundError, StorageError


class ObjectStoreError(StorageError):
    """An object store backend failed or was configured wrongly."""


class ObjectNotFoundError(NotFoundError):
    """No object under the given key."""
