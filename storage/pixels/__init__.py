"""The raster pixel store: scenes warped onto the nested grid, overview pyramids, search.

``index_rasters`` writes warped blocks, ``update_pyramid`` keeps the overviews,
``search_pixels`` finds pixels by value, ``read_layer`` / ``join_layers`` read arrays.
"""

from gravitas.storage.pixels.errors import LayerNotFoundError, PixelSearchError
from gravitas.storage.pixels.layers import LayerInfo, LayerRegistry

__all__ = ["LayerInfo", "LayerNotFoundError", "LayerRegistry", "PixelSearchError"]
