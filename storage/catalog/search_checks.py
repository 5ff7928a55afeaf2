"""Trust checks on search input shared by every catalog backend.

Search requests arrive unauthenticated (``GET/POST /stac/search``), so each user value is
checked here before a backend sees it, and both backends refuse the same things with the
same message. Property names (CQL2 ``{"property": ...}`` and ``sortby`` fields) are never
formatted into SQL by a backend; the rules below keep them to names a JSON path can
express and bound their size, so what is left is matched as a plain key (a name no item
has matches nothing). Text anywhere in a search must be UTF-8 without NUL (PostgreSQL
cannot hold either), and a filter's size and nesting are bounded.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from gravitas.storage.catalog.errors import InvalidSearchError

__all__ = [
    "MAX_FILTER_DEPTH",
    "MAX_FILTER_NODES",
    "MAX_LIST",
    "MAX_NAME",
    "check_filter",
    "check_property_name",
    "check_strings",
    "shown",
]

MAX_NAME = 256
"""Longest property name (characters) a filter or sortby may use."""
MAX_FILTER_DEPTH = 64
"""Deepest nesting of a CQL2-JSON filter."""
MAX_FILTER_NODES = 10_000
"""Most values (objects, lists, literals) in one CQL2-JSON filter."""
MAX_LIST = 10_000
"""Most entries in ``ids`` or ``collections``."""
_FORBIDDEN = frozenset('"\\')
_INT64 = (-(2**63), 2**63 - 1)


def shown(value: Any, width: int = 80) -> str:
    """``repr(value)`` cut to ``width`` characters, for messages that name a bad value."""
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print (Python's 4300-digit limit)
        text = f"<integer of {value.bit_length()} bits>"
    return text if len(text) <= width else f"{text[: width - 3]}..."


def _control(name: str) -> str | None:
    for c in name:
        if ord(c) < 32 or ord(c) == 127:
            return c
    return None


def check_property_name(name: Any, where: str = "filter") -> str:
    """``name`` without a leading ``properties.``, or :class:`InvalidSearchError` naming
    it: a non-empty string of at most :data:`MAX_NAME` characters without control
    characters, ``"`` or ``\\``."""
    if not isinstance(name, str):
        raise InvalidSearchError(
            f"{where} property name must be a string, got {shown(name)}; "
            'write {"property": "eo:cloud_cover"}'
        )
    bare = name.removeprefix("properties.")
    problem = None
    if not bare.strip():
        problem = "is empty"
    elif len(bare) > MAX_NAME:
        problem = f"is longer than {MAX_NAME} characters"
    elif (c := _control(bare)) is not None:
        problem = f"contains the control character {c!r}"
    elif _FORBIDDEN & set(bare):
        problem = "contains a double quote or backslash"
    elif _surrogate(bare):
        problem = "is not valid Unicode (a lone surrogate)"
    if problem is not None:
        raise InvalidSearchError(
            f"{where} property name {shown(name)} {problem}; use an item property name "
            "such as eo:cloud_cover (see /stac/queryables)"
        )
    return bare


def _surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_strings(value: Any, where: str) -> None:
    """Refuse NUL characters, lone surrogates, non-finite numbers and integers beyond 64
    bits anywhere in ``value`` (a string, number or nested list/dict), naming the value."""
    for item in _walk(value):
        if isinstance(item, str):
            if "\x00" in item:
                raise InvalidSearchError(
                    f"{where} value {shown(item)} contains a NUL character; remove it"
                )
            if _surrogate(item):
                raise InvalidSearchError(
                    f"{where} value {shown(item)} is not valid Unicode (a lone surrogate)"
                )
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidSearchError(f"{where} number {item!r} is not finite; use a real number")
        elif isinstance(item, int) and not _INT64[0] <= item <= _INT64[1]:
            raise InvalidSearchError(
                f"{where} number {shown(item)} is beyond the 64-bit integer range; "
                "write it as a decimal such as 1e30"
            )


def _walk(value: Any) -> Iterator[Any]:
    """Every scalar in ``value`` (keys included), in document order."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            stack.extend(reversed([x for kv in item.items() for x in kv]))
        elif isinstance(item, list | tuple):
            stack.extend(reversed(item))
        else:
            yield item


def check_filter(expr: Any) -> None:
    """Check a CQL2-JSON filter's size, nesting, text and every property name in it."""
    nodes = 0
    stack: list[tuple[Any, int]] = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if depth > MAX_FILTER_DEPTH:
            raise InvalidSearchError(
                f"filter is nested deeper than {MAX_FILTER_DEPTH} levels; simplify it"
            )
        if nodes > MAX_FILTER_NODES:
            raise InvalidSearchError(
                f"filter has more than {MAX_FILTER_NODES} values; split the search"
            )
        if isinstance(node, Mapping):
            if "property" in node:
                check_property_name(node["property"])
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    check_strings(expr, "filter")
