"""Hrefs the node owns, as the world sees them: URLs of the edge's asset route.

Items in the catalog keep the object store's own hrefs (``file:///...``, ``s3://...``),
which the agents read. Whatever leaves the node (STAC API answers, registrations on
``stac.registrations``) carries ``<public url>/stac/assets/<key>`` instead, served with
range requests by :mod:`gravitas.streams.stac.assets`. Hrefs outside the object store
(External References, other nodes' URLs) are left exactly as they are.

Only objects under :data:`PUBLISHED_PREFIXES` (imported scene files, datacubes, methane
products: what items point at) are published. Everything else in the store (search
results by reference under ``results/``, anything a later feature keeps there) is never
served nor turned into a URL; a feature that publishes objects adds its prefix here.

Example::

    public_item(item, services.object_store, "https://node-a.example.org")
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from gravitas.schemas.errors import UnsafePathError
from gravitas.storage.objects.base import ObjectStore
from gravitas.storage.objects.keys import check_key

__all__ = [
    "ASSETS_PATH",
    "PUBLISHED_PREFIXES",
    "asset_url",
    "internal_item",
    "is_published",
    "key_of_href",
    "public_item",
]

ASSETS_PATH = "/stac/assets"
"""Path of the edge route that serves object-store objects."""

PUBLISHED_PREFIXES = ("assets/", "datacubes/", "methane/", "graphs/")
"""Key prefixes of the objects STAC items point at: the only ones the asset route serves."""


def is_published(key: str) -> bool:
    """True if ``key`` (already checked) is an object the node publishes."""
    return key.startswith(PUBLISHED_PREFIXES)


def asset_url(base_url: str, key: str) -> str:
    """The public URL of object ``key`` on the edge at ``base_url``."""
    return f"{base_url.rstrip('/')}{ASSETS_PATH}/{quote(check_key(key), safe='/')}"


def _store_prefix(store: ObjectStore) -> str:
    """The href of the store's root: what every object href starts with."""
    probe = store.href("k")
    return probe[: -len("k")]


def key_of_href(store: ObjectStore, href: str) -> str | None:
    """The object key an href names in ``store`` (``file://``, ``s3://`` or a bare path
    under the store), or None for an href the store does not hold."""
    if not isinstance(href, str) or not href:
        return None
    prefix = _store_prefix(store)
    rest: str | None = None
    if href.startswith(prefix):
        rest = href[len(prefix) :]
        if prefix.startswith("file:"):
            rest = unquote(rest)
    elif prefix.startswith("file:") and href.startswith("/"):
        root = Path(unquote(urlsplit(prefix).path))
        path = Path(href)
        if path.is_relative_to(root):
            rest = path.relative_to(root).as_posix()
    if not rest:
        return None
    try:
        key = check_key(rest)
    except UnsafePathError:
        return None
    return key if is_published(key) else None


def _public_href(store: ObjectStore, base_url: str, href: Any) -> Any:
    key = key_of_href(store, href) if isinstance(href, str) else None
    return asset_url(base_url, key) if key is not None else href


def _internal_href(store: ObjectStore, base_urls: tuple[str, ...], href: Any) -> Any:
    if not isinstance(href, str):
        return href
    for base in base_urls:
        route = f"{base.rstrip('/')}{ASSETS_PATH}/"
        if href.startswith(route):
            try:
                key = check_key(unquote(href[len(route) :].split("?")[0]))
            except UnsafePathError:
                return href
            return store.href(key) if is_published(key) else href
    return href


def internal_item(
    item: Mapping[str, Any], store: ObjectStore, base_urls: tuple[str, ...]
) -> dict[str, Any]:
    """The inverse of :func:`public_item`: hrefs of this node's asset route (on any of
    ``base_urls``) back to the store's own hrefs, so an item fetched from the API and
    written back (a STAC transaction) still names the objects the agents read."""
    return _rewrite(item, lambda href: _internal_href(store, base_urls, href))


def public_item(item: Mapping[str, Any], store: ObjectStore, base_url: str) -> dict[str, Any]:
    """A copy of a STAC item or collection whose object-store hrefs (assets, their
    alternates, links) are URLs of the edge at ``base_url``."""
    return _rewrite(item, lambda href: _public_href(store, base_url, href))


def _rewrite(item: Mapping[str, Any], change: Callable[[Any], Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(item))
    assets = out.get("assets")
    if isinstance(assets, dict):
        for asset in assets.values():
            if not isinstance(asset, dict):
                continue
            if "href" in asset:
                asset["href"] = change(asset["href"])
            alternates = asset.get("alternate")
            if isinstance(alternates, dict):
                for alt in alternates.values():
                    if isinstance(alt, dict) and "href" in alt:
                        alt["href"] = change(alt["href"])
    links = out.get("links")
    if isinstance(links, list):
        for link in links:
            if isinstance(link, dict) and "href" in link:
                link["href"] = change(link["href"])
    return out
