"""Errors of the raster pixel store."""

from __future__ import annotations

from gravitas.schemas.errors import NotFoundError, RequestError, StorageError


class LayerNotFoundError(NotFoundError):
    """A layer name the layer registry does not know."""


class PixelSearchError(RequestError):
    """A pixel search or read that cannot be answered (level, window, layer)."""


class LayerRegistryError(StorageError):
    """The layer registry database failed."""
