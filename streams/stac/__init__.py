"""The node's STAC API, mounted on the HTTP edge under ``/stac``.

``stac_router(catalog, settings)`` returns a FastAPI router: landing page, conformance,
queryables, collections, items, item search (GET/POST, CQL2 filter, sort) and the
transactions extension for holders of the node's API token.
"""

from gravitas.streams.stac.router import STAC_PREFIX, stac_router

__all__ = ["STAC_PREFIX", "stac_router"]
