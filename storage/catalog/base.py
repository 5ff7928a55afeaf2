"""The catalog contract: :class:`SearchParams`, :class:`SearchPage` and :class:`Catalog`.

A catalog stores STAC collections and items (plain dicts, STAC 1.0/1.1 JSON) and
searches them. Every item row carries its *owning node* (the node that registered it)
and a *version*: upserts are idempotent by ``(collection, item id, version)`` and an
older version never overwrites a newer one, so replaying ``stac.registrations`` in any
order converges. Backends: :mod:`gravitas.storage.catalog.sqlite` (embedded) and
PostgreSQL + pgstac (scale-out); both pass ``tests/storage/test_storage_catalog.py``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from datetime import datetime as DateTime
from typing import Any, Literal, Protocol, runtime_checkable

from gravitas.storage.catalog.errors import InvalidItemError, InvalidSearchError
from gravitas.storage.catalog.search_checks import (
    MAX_LIST,
    check_filter,
    check_property_name,
    check_strings,
    shown,
)

__all__ = [
    "NODE_PROPERTY",
    "VERSION_PROPERTY",
    "Catalog",
    "SearchPage",
    "SearchParams",
    "SortField",
    "check_item",
    "parse_datetime",
    "parse_interval",
    "utc_text",
]

NODE_PROPERTY = "gravitas:node"
"""Property that every search result and ``get_item`` answer carries: the owning node."""

VERSION_PROPERTY = "gravitas:version"
"""Property that every search result and ``get_item`` answer carries: the stored version."""

MAX_LIMIT = 10_000
"""Largest page size a search may ask for."""


@dataclass(frozen=True)
class SortField:
    """One sort key: an item property (``datetime``, ``eo:cloud_cover``) or ``id``,
    ``collection``; a leading ``properties.`` is accepted and dropped."""

    field: str
    """Property name, or ``id`` / ``collection``."""
    direction: Literal["asc", "desc"] = "asc"
    """Sort direction."""

    def __post_init__(self) -> None:
        if self.direction not in ("asc", "desc"):
            raise InvalidSearchError(
                f"sort direction must be 'asc' or 'desc', got {self.direction!r}"
            )
        check_property_name(self.field, "sortby")

    @property
    def name(self) -> str:
        """The field without a ``properties.`` prefix."""
        return self.field.removeprefix("properties.")

    @classmethod
    def parse(cls, spec: str | Mapping[str, str]) -> SortField:
        """``"-datetime"``, ``"+id"``, ``"datetime"`` or ``{"field": f, "direction": d}``."""
        if isinstance(spec, Mapping):
            direction = str(spec.get("direction", "asc")).lower()
            return cls(spec.get("field", ""), direction)  # type: ignore[arg-type]
        if not isinstance(spec, str):
            raise InvalidSearchError(
                f"sortby entry {shown(spec)} must be a field name or "
                '{"field": ..., "direction": "asc"|"desc"}'
            )
        spec = spec.strip()
        if spec.startswith("-"):
            return cls(spec[1:], "desc")
        return cls(spec.lstrip("+ "), "asc")


@dataclass(frozen=True)
class SearchParams:
    """An item search (STAC API item-search + filter), backend independent.

    Example: ``SearchParams(bbox=(13.0, 52.0, 14.0, 53.0), datetime="2017-01-01/..",
    filter="eo:cloud_cover < 10", filter_lang="cql2-text", limit=50)``.
    """

    bbox: tuple[float, ...] | None = None
    """``(west, south, east, north)`` or the 6-number 3-D form, EPSG:4326."""
    intersects: Mapping[str, Any] | None = None
    """A GeoJSON geometry that results must intersect (not together with ``bbox``)."""
    datetime: str | None = None
    """An instant or an interval ``start/end`` (RFC 3339; ``..`` or empty = open end)."""
    collections: tuple[str, ...] | None = None
    """Only items of these collections."""
    ids: tuple[str, ...] | None = None
    """Only items with these ids."""
    filter: Mapping[str, Any] | str | None = None
    """A CQL2 filter: a cql2-json dict or a cql2-text string."""
    filter_lang: Literal["cql2-json", "cql2-text"] | None = None
    """Language of ``filter``; inferred from its type when None."""
    sortby: tuple[SortField, ...] = ()
    """Sort keys; default order is datetime descending, then id."""
    limit: int = 10
    """Page size (1 .. 10000)."""
    token: str | None = None
    """Opaque paging token from a previous :attr:`SearchPage.next_token`."""
    federated: bool = False
    """Include items owned by other nodes (registered via ``stac.registrations``)."""
    fields: Mapping[str, Any] = field(default_factory=dict)
    """Reserved for the fields extension; backends may ignore it."""

    def __post_init__(self) -> None:
        if self.bbox is not None:
            if len(self.bbox) not in (4, 6):
                raise InvalidSearchError(
                    f"bbox must have 4 or 6 numbers (west,south,east,north), got {shown(self.bbox)}"
                )
            _check_bbox_numbers(self.bbox)
            w, s, e, n = _bbox2d(self.bbox)
            if not (-180 <= w <= 180 and -180 <= e <= 180):
                raise InvalidSearchError(
                    f"bbox west/east must lie in -180..180 (west > east crosses the "
                    f"antimeridian), got {self.bbox!r}"
                )
            if s > n or not (-90 <= s <= 90 and -90 <= n <= 90):
                raise InvalidSearchError(
                    f"bbox south/north must lie in -90..90 with south <= north, got {self.bbox!r}"
                )
        if self.bbox is not None and self.intersects is not None:
            raise InvalidSearchError("give bbox or intersects, not both")
        if self.intersects is not None:
            if not isinstance(self.intersects, Mapping) or "type" not in self.intersects:
                raise InvalidSearchError(
                    f"intersects must be a GeoJSON geometry with a 'type', got "
                    f"{shown(self.intersects)}"
                )
            check_strings(self.intersects, "intersects")
            from gravitas.storage.catalog.geometry import geometry_from_json

            try:
                geometry_from_json(self.intersects)
            except InvalidSearchError as exc:
                raise InvalidSearchError(f"intersects {exc}") from exc
        if isinstance(self.limit, bool) or not isinstance(self.limit, int):
            raise InvalidSearchError(f"limit must be an integer, got {shown(self.limit)}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidSearchError(f"limit must be 1..{MAX_LIMIT}, got {self.limit}")
        for name in ("collections", "ids"):
            _check_ids(name, getattr(self, name))
        if self.token is not None:
            if not isinstance(self.token, str):
                raise InvalidSearchError(f"paging token must be a string, got {shown(self.token)}")
            check_strings(self.token, "paging token")
        if self.filter_lang not in (None, "cql2-json", "cql2-text"):
            raise InvalidSearchError(
                f"filter-lang must be 'cql2-json' or 'cql2-text', got {shown(self.filter_lang)}"
            )
        if self.datetime is not None:
            if not isinstance(self.datetime, str):
                raise InvalidSearchError(
                    "datetime must be an RFC 3339 string or 'start/end', got "
                    f"{shown(self.datetime)}"
                )
            check_strings(self.datetime, "datetime")
            parse_interval(self.datetime)
        if self.filter is not None and not isinstance(self.filter, str | Mapping):
            raise InvalidSearchError(
                f"filter must be a cql2-json object or a cql2-text string, got {shown(self.filter)}"
            )
        flt = self.filter_json()
        if flt is not None:
            check_filter(flt)

    @property
    def bbox2d(self) -> tuple[float, float, float, float] | None:
        """The bbox as ``(west, south, east, north)``, dropping heights."""
        return _bbox2d(self.bbox) if self.bbox is not None else None

    @property
    def interval(self) -> tuple[DateTime | None, DateTime | None]:
        """The datetime filter as ``(start, end)`` in UTC; None = open end."""
        return parse_interval(self.datetime) if self.datetime else (None, None)

    def filter_json(self) -> dict[str, Any] | None:
        """The filter as cql2-json (cql2-text is parsed with the ``cql2`` package, safely:
        :mod:`~gravitas.storage.catalog.cql2text`)."""
        if self.filter is None or self.filter == "":
            return None
        lang = self.filter_lang or ("cql2-text" if isinstance(self.filter, str) else "cql2-json")
        if lang == "cql2-json":
            if isinstance(self.filter, str):
                import orjson

                try:
                    parsed = orjson.loads(self.filter)
                except orjson.JSONDecodeError as exc:
                    raise InvalidSearchError(
                        f"filter is not valid cql2-json ({exc}): {shown(self.filter, 200)}"
                    ) from exc
                if not isinstance(parsed, dict):
                    raise InvalidSearchError(
                        f"cql2-json filter must be an object, got {shown(parsed)}"
                    )
                return parsed
            return dict(self.filter)
        if not isinstance(self.filter, str):
            raise InvalidSearchError("filter-lang is cql2-text but filter is not a string")
        from gravitas.storage.catalog.cql2text import parse_cql2_text

        check_strings(self.filter, "filter")
        return parse_cql2_text(self.filter)


@dataclass(frozen=True)
class SearchPage:
    """One page of search results."""

    items: list[dict[str, Any]]
    """STAC item dicts, each with ``properties["gravitas:node"]``."""
    matched: int | None
    """Number of items matching the search (all pages), if the backend knows it."""
    next_token: str | None = None
    """Token for the next page, or None on the last page."""


@runtime_checkable
class Catalog(Protocol):
    """A STAC catalog of collections and versioned items with search.

    Items need not have their collection registered (remote items may arrive first): an
    item's collection is created when its first item is stored, and every stored item
    grows its collection's extents, summaries and ``item_assets``
    (:mod:`~gravitas.storage.catalog.collections`) in the same write.
    """

    node_id: str
    """The node this catalog belongs to: the default owner of upserted items."""

    def upsert_collection(self, collection: Mapping[str, Any]) -> None:
        """Insert or replace a STAC collection dict (by its ``id``)."""
        ...

    def get_collection(self, collection_id: str) -> dict[str, Any]:
        """The collection dict; :class:`CollectionNotFoundError` if unknown."""
        ...

    def list_collections(self) -> list[dict[str, Any]]:
        """Every collection, ordered by id."""
        ...

    def delete_collection(self, collection_id: str) -> bool:
        """Remove a collection and its items; False if it did not exist."""
        ...

    def upsert_item(
        self, item: Mapping[str, Any], owning_node: str | None = None, version: int = 1
    ) -> bool:
        """Store an item dict (its ``collection`` field is required).

        ``owning_node`` defaults to :attr:`node_id`. An item already stored with a
        higher version is kept and False is returned; equal or newer versions replace
        it (True). :class:`InvalidItemError` for dicts that are not STAC items.
        """
        ...

    def get_item(self, collection_id: str, item_id: str) -> dict[str, Any]:
        """The item dict (with ``gravitas:node``); :class:`ItemNotFoundError` if unknown."""
        ...

    def delete_item(self, collection_id: str, item_id: str, version: int | None = None) -> bool:
        """Remove an item; with ``version``, only if the stored one is not newer.

        Returns True if a row was removed.
        """
        ...

    def search(self, params: SearchParams) -> SearchPage:
        """One page of items matching ``params``."""
        ...

    def count(self, collection_id: str | None = None, federated: bool = True) -> int:
        """Number of items (in one collection; local only unless ``federated``)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


# --- helpers shared by the backends -------------------------------------------------

_OPEN = ("", "..")
_STRICT = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?([Zz]|[+-]\d{2}:\d{2})?$"
)


def parse_datetime(text: str, strict: bool = True) -> DateTime:
    """An RFC 3339 date-time with a zone (``strict``; else also a date or a naive
    time, taken as UTC) as an aware UTC datetime."""
    value = text.strip()
    if not (_STRICT if strict else _RFC3339).match(value):
        raise InvalidSearchError(
            f"datetime {shown(text)} is not RFC 3339; use e.g. 2017-02-16T10:21:01Z"
        )
    value = value.replace("z", "Z").replace("Z", "+00:00")
    try:
        dt = DateTime.fromisoformat(value)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidSearchError(f"datetime {text!r} is not a valid date: {exc}") from exc


def utc_text(dt: DateTime) -> str:
    """An aware datetime as fixed-width UTC text (``0001-01-01T00:00:00.000000Z``): such
    strings sort as the times they name (``strftime('%Y')`` drops a year's zeros)."""
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_interval(text: str) -> tuple[DateTime | None, DateTime | None]:
    """``"a/b"``, ``"../b"``, ``"a/.."`` or an instant ``"a"`` as ``(start, end)``."""
    if "/" not in text:
        instant = parse_datetime(text)
        return instant, instant
    parts = text.split("/")
    if len(parts) != 2:
        raise InvalidSearchError(f"datetime interval {shown(text)} must be 'start/end'")
    start = None if parts[0].strip() in _OPEN else parse_datetime(parts[0])
    end = None if parts[1].strip() in _OPEN else parse_datetime(parts[1])
    if start is None and end is None:
        raise InvalidSearchError(f"datetime interval {text!r} is open at both ends; give one")
    if start is not None and end is not None and start > end:
        raise InvalidSearchError(f"datetime interval {text!r} starts after it ends")
    return start, end


def _check_bbox_numbers(bbox: Sequence[Any]) -> None:
    for v in bbox:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise InvalidSearchError(
                f"bbox must be finite numbers west,south,east,north; {v!r} in {shown(bbox)} is not"
            )


def _check_ids(name: str, values: Any) -> None:
    if values is None:
        return
    if not isinstance(values, tuple | list):
        raise InvalidSearchError(f"{name} must be a list of strings, got {shown(values)}")
    if len(values) > MAX_LIST:
        raise InvalidSearchError(f"{name} lists {len(values)} values; give at most {MAX_LIST}")
    for v in values:
        if not isinstance(v, str):
            raise InvalidSearchError(f"{name} must be strings, got {shown(v)}")
    check_strings(list(values), name)


def _bbox2d(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    if len(bbox) == 6:
        return float(bbox[0]), float(bbox[1]), float(bbox[3]), float(bbox[4])
    return float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3])


def check_item(item: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """``(id, collection, properties)`` of a STAC item dict, or :class:`InvalidItemError`
    naming what is missing; every datetime property must parse (RFC 3339)."""
    iid = item.get("id")
    if item.get("type") != "Feature" or not isinstance(iid, str) or not iid:
        raise InvalidItemError(
            f"a STAC item needs type 'Feature' and a string id, got type "
            f"{item.get('type')!r}, id {iid!r}"
        )
    cid = item.get("collection")
    if not isinstance(cid, str) or not cid:
        raise InvalidItemError(f"item {iid!r} has no 'collection'; set item.collection_id")
    props = item.get("properties")
    if not isinstance(props, dict):
        raise InvalidItemError(f"item {iid!r} has no 'properties' object")
    if not (props.get("datetime") or (props.get("start_datetime") and props.get("end_datetime"))):
        raise InvalidItemError(
            f"item {iid!r} needs properties.datetime or start_datetime and end_datetime"
        )
    for key in ("datetime", "start_datetime", "end_datetime"):
        if props.get(key):
            try:
                parse_datetime(str(props[key]))
            except InvalidSearchError as exc:
                raise InvalidItemError(f"item {iid!r}: {key}: {exc}") from exc
    return iid, cid, props
