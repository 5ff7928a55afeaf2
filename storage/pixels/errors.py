"""Errors of the raster pixel store."""

from __future__ import annotations

from gravitas.schemas.errors import InputError, NotFoundError, RequestError, StorageError


class LayerNotFoundError(NotFoundError):
    """A layer name the layer registry does not know."""


class PixelSearchError(RequestError):
    """A pixel search or read that cannot be answered (level, window, layer)."""


class LayerRegistryError(StorageError):
    """The layer registry database failed."""


class TileRequestError(InputError):
    """A map tile request with a bad parameter (zoom, tile index, layer, time, rescale,
    colormap): answered 400 with the bad value named."""
