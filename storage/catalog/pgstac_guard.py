"""ASGI middleware in front of stac-fastapi-pgstac: GET filters parsed safely first.

stac-fastapi-pgstac hands a GET ``filter`` to ``cql2.Expr`` on a request thread; a
deeply nested cql2-text filter (``((((...`` a few thousand levels, a few kilobytes)
overflows that thread's stack and kills the whole server process (a segmentation
fault). :class:`GuardFilters` parses a GET filter with
:func:`~gravitas.storage.catalog.cql2text.parse_cql2_text` (bounded, on a large stack),
checks it like the node's own catalog search does (size, nesting, property names, text),
and passes it on as cql2-json; a bad filter is answered 400 naming it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from gravitas.storage.catalog.cql2text import parse_cql2_text
from gravitas.storage.catalog.errors import InvalidSearchError
from gravitas.storage.catalog.search_checks import check_filter, check_strings, shown

__all__ = ["GuardFilters", "safe_filter_query"]


def safe_filter_query(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Query pairs with ``filter`` turned into checked cql2-json (``filter-lang`` set to
    match), or :class:`InvalidSearchError` naming the bad filter."""
    query = dict(pairs)
    text = query.get("filter")
    if not text:
        return pairs
    lang = query.get("filter-lang") or "cql2-text"
    check_strings(text, "filter")
    if lang == "cql2-text":
        parsed: Any = parse_cql2_text(text)
    elif lang == "cql2-json":
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidSearchError(
                f"filter is not valid cql2-json ({exc}): {shown(text, 200)}"
            ) from exc
    else:
        raise InvalidSearchError(
            f"filter-lang must be 'cql2-json' or 'cql2-text', got {shown(lang)}"
        )
    if not isinstance(parsed, dict):
        raise InvalidSearchError(f"filter {shown(text)} is not a condition")
    check_filter(parsed)
    out = [(k, v) for k, v in pairs if k not in ("filter", "filter-lang")]
    return [*out, ("filter", orjson.dumps(parsed).decode()), ("filter-lang", "cql2-json")]


class GuardFilters:
    """Check and convert the ``filter`` of every GET request (see the module doc)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        query = scope.get("query_string", b"") if scope.get("type") == "http" else b""
        if scope.get("method") != "GET" or b"filter" not in query:
            await self.app(scope, receive, send)
            return
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
        pairs = [(k.encode("latin-1").decode(), v.encode("latin-1").decode()) for k, v in pairs]
        try:
            fixed = safe_filter_query(pairs)
        except (InvalidSearchError, UnicodeDecodeError) as exc:
            body = orjson.dumps({"code": "BadRequest", "description": str(exc)})
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app({**scope, "query_string": urlencode(fixed).encode()}, receive, send)
