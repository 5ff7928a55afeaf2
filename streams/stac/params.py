"""Parse STAC item-search requests (GET query strings, POST bodies) into SearchParams."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gravitas.storage.catalog.base import MAX_LIMIT, SearchParams, SortField
from gravitas.storage.catalog.errors import InvalidSearchError
from gravitas.storage.catalog.search_checks import shown

__all__ = ["params_from_body", "params_from_query"]

_TRUE = {"1", "true", "yes", "on"}


def _csv(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _bbox(value: Any) -> tuple[float, ...] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        parts: list[Any] = value.split(",")
    elif isinstance(value, list | tuple):
        parts = list(value)
        for v in parts:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise InvalidSearchError(
                    f"bbox must be a JSON array of numbers, got {shown(v)} in {shown(value)}"
                )
    else:
        raise InvalidSearchError(f"bbox must be numbers west,south,east,north, got {shown(value)}")
    try:
        return tuple(float(v) for v in parts)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidSearchError(
            f"bbox must be numbers west,south,east,north, got {shown(value)}"
        ) from exc


def _limit(value: Any, default: int) -> int:
    """The page size; values above the maximum are clamped (as STAC API allows)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidSearchError(f"limit must be an integer, got {shown(value)}")
    try:
        limit = int(value)
    except ValueError as exc:
        raise InvalidSearchError(f"limit must be an integer, got {shown(value)}") from exc
    return min(limit, MAX_LIMIT)


def _check_crs(value: Any) -> None:
    if value and value not in (
        "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        "https://www.opengis.net/def/crs/OGC/1.3/CRS84",
    ):
        raise InvalidSearchError(f"filter-crs {value!r} is not supported; omit it or use CRS84")


def params_from_query(
    query: Mapping[str, str], collection: str | None = None, default_limit: int = 10
) -> SearchParams:
    """SearchParams from a GET query string (``collections=a,b&bbox=...&filter=...``)."""
    intersects = None
    if query.get("intersects"):
        try:
            intersects = orjson.loads(query["intersects"])
        except orjson.JSONDecodeError as exc:
            raise InvalidSearchError(
                f"intersects must be GeoJSON, got {query['intersects'][:100]!r}"
            ) from exc
    _check_crs(query.get("filter-crs"))
    sortby = tuple(SortField.parse(s) for s in _csv(query.get("sortby")) or ())
    return SearchParams(
        bbox=_bbox(query.get("bbox")),
        intersects=intersects,
        datetime=query.get("datetime") or None,
        collections=(collection,) if collection else _csv(query.get("collections")),
        ids=_csv(query.get("ids")),
        filter=query.get("filter") or None,
        filter_lang=query.get("filter-lang") or "cql2-text",  # type: ignore[arg-type]
        sortby=sortby,
        limit=_limit(query.get("limit"), default_limit),
        token=query.get("token") or None,
        federated=str(query.get("federated", "")).lower() in _TRUE,
    )


def params_from_body(body: Mapping[str, Any], default_limit: int = 10) -> SearchParams:
    """SearchParams from a POST /search JSON body."""
    if not isinstance(body, Mapping):
        raise InvalidSearchError(f"search body must be a JSON object, got {type(body).__name__}")
    _check_crs(body.get("filter-crs"))
    if body.get("bbox") is not None and not isinstance(body["bbox"], list):
        raise InvalidSearchError(f"POST bbox must be a JSON array of numbers, got {body['bbox']!r}")
    sortby_raw = body.get("sortby") or ()
    if isinstance(sortby_raw, str):
        sortby_raw = _csv(sortby_raw) or ()
    if not isinstance(sortby_raw, list | tuple):
        raise InvalidSearchError(
            f'sortby must be a list of {{"field": ..., "direction": ...}}, got {shown(sortby_raw)}'
        )
    collections = body.get("collections")
    ids = body.get("ids")
    flt = body.get("filter")
    lang = body.get("filter-lang") or body.get("filter_lang")
    if lang is None and flt is not None:
        lang = "cql2-text" if isinstance(flt, str) else "cql2-json"
    return SearchParams(
        bbox=_bbox(body.get("bbox")),
        intersects=body.get("intersects"),
        datetime=body.get("datetime") or None,
        collections=tuple(_listish(collections)) if collections is not None else None,
        ids=tuple(_listish(ids)) if ids is not None else None,
        filter=flt,
        filter_lang=lang,
        sortby=tuple(SortField.parse(s) for s in sortby_raw),
        limit=_limit(body.get("limit"), default_limit),
        token=body.get("token") or None,
        federated=bool(body.get("federated", False)),
    )


def _listish(value: Any) -> list[str]:
    if isinstance(value, str):
        return list(_csv(value) or ())
    if isinstance(value, list):
        for v in value:
            if not isinstance(v, str):
                raise InvalidSearchError(f"expected a list of strings, got {shown(v)} in it")
        return value
    raise InvalidSearchError(f"expected a list of strings, got {shown(value)}")
