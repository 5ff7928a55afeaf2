"""The conformance classes the node's STAC API implements."""

from __future__ import annotations

_STAC = "https://api.stacspec.org/v1.0.0"
_OGC = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf"
_CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf"

CONFORMANCE = [
    f"{_STAC}/core",
    f"{_STAC}/collections",
    f"{_STAC}/ogcapi-features",
    f"{_STAC}/item-search",
    f"{_STAC}/item-search#sort",
    f"{_STAC}/ogcapi-features#sort",
    f"{_STAC}/ogcapi-features/extensions/transaction",
    "https://api.stacspec.org/v1.0.0-rc.2/item-search#filter",
    "https://api.stacspec.org/v1.0.0-rc.2/ogcapi-features#filter",
    f"{_OGC}/core",
    f"{_OGC}/geojson",
    f"{_OGC}/oas30",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/simpletx",
    f"{_CQL2}/cql2-text",
    f"{_CQL2}/cql2-json",
    f"{_CQL2}/basic-cql2",
    f"{_CQL2}/advanced-comparison-operators",
    f"{_CQL2}/basic-spatial-functions",
    f"{_CQL2}/basic-spatial-functions-plus-geometries",
    f"{_CQL2}/spatial-functions",
    f"{_CQL2}/arithmetic",
    f"{_CQL2}/property-property",
]
"""Every class the API advertises in ``conformsTo``."""
