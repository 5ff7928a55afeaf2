"""Absolute links of the STAC API resources, built from the URL a client used."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

__all__ = ["GEOJSON", "JSON", "collection_links", "item_links", "keep_links", "link"]

JSON = "application/json"
GEOJSON = "application/geo+json"
_STRUCTURAL = {"self", "root", "parent", "collection", "items", "next", "prev"}


def link(rel: str, href: str, media_type: str = JSON, **extra: Any) -> dict[str, Any]:
    """One link object."""
    return {"rel": rel, "type": media_type, "href": href, **extra}


def keep_links(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The stored non-structural links (license, via, alternate, ...)."""
    return [
        dict(lk)
        for lk in doc.get("links", []) or []
        if isinstance(lk, Mapping) and lk.get("rel") not in _STRUCTURAL
    ]


def collection_links(base: str, cid: str, doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """self/root/parent/items/queryables links of one collection."""
    url = f"{base}/collections/{quote(cid, safe='')}"
    return [
        link("self", url),
        link("root", base),
        link("parent", base),
        link("items", f"{url}/items", GEOJSON),
        link(
            "http://www.opengis.net/def/rel/ogc/1.0/queryables",
            f"{url}/queryables",
            "application/schema+json",
        ),
        *keep_links(doc),
    ]


def item_links(base: str, item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """self/parent/collection/root links of one item."""
    cid = quote(str(item.get("collection", "")), safe="")
    curl = f"{base}/collections/{cid}"
    return [
        link("self", f"{curl}/items/{quote(str(item['id']), safe='')}", GEOJSON),
        link("parent", curl),
        link("collection", curl),
        link("root", base),
        *keep_links(item),
    ]


def with_query(url: str, query: Mapping[str, str]) -> str:
    """``url?query`` with the given parameters."""
    return f"{url}?{urlencode(query)}" if query else url
