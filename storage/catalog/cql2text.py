"""Parse cql2-text filters from untrusted clients without risking the process.

The ``cql2`` parser (Rust) recurses once per nesting level and overflows a thread's stack
at a few thousand levels (``((((...``, ``- - - 1``): that is a segmentation fault, not
an exception, and it would take the whole node down. So a filter is bounded in length
(:data:`MAX_TEXT`), refused early when its parentheses nest deeper than
:data:`~gravitas.storage.catalog.search_checks.MAX_FILTER_DEPTH`, and parsed on a thread
whose stack is large enough for any text within the bound.
"""

from __future__ import annotations

import threading
from typing import Any

from gravitas.storage.catalog.errors import InvalidSearchError
from gravitas.storage.catalog.search_checks import MAX_FILTER_DEPTH, shown

__all__ = ["MAX_TEXT", "parse_cql2_text"]

MAX_TEXT = 8000
"""Longest cql2-text filter (characters); longer filters go as cql2-json."""
_STACK_BYTES = 128 * 1024 * 1024
"""Stack of the parsing thread: ~16x what the deepest text within MAX_TEXT needs."""
_START = threading.Lock()


def _paren_depth(text: str) -> int:
    """Deepest nesting of parentheses outside '...' literals and "..." identifiers."""
    depth = deepest = 0
    quote: str | None = None
    for c in text:
        if quote is not None:
            if c == quote:
                quote = None  # a doubled quote ('') closes and reopens: same depth either way
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif c == ")":
            depth -= 1
    return deepest


def parse_cql2_text(text: str) -> dict[str, Any]:
    """cql2-text as cql2-json, or :class:`InvalidSearchError` naming the filter."""
    if len(text) > MAX_TEXT:
        raise InvalidSearchError(
            f"cql2-text filter {shown(text)} is {len(text)} characters, more than {MAX_TEXT}; "
            "send long filters as cql2-json and long id lists in the ids parameter"
        )
    if _paren_depth(text) > MAX_FILTER_DEPTH:
        raise InvalidSearchError(
            f"cql2-text filter {shown(text)} nests parentheses deeper than {MAX_FILTER_DEPTH}"
            " levels; simplify it"
        )
    result: dict[str, Any] = {}

    def work() -> None:
        import cql2

        try:
            result["json"] = cql2.parse_text(text).to_json()
        except BaseException as exc:  # cql2 raises ValueError, its own types, or a Rust panic
            result["error"] = exc

    with _START:  # the stack size applies to threads started while it is set
        previous = threading.stack_size(_STACK_BYTES)
        try:
            thread = threading.Thread(target=work, name="cql2-text", daemon=True)
            thread.start()
        finally:
            threading.stack_size(previous)
    thread.join()
    if "json" in result and isinstance(result["json"], dict):
        out: dict[str, Any] = result["json"]
        return out
    error = result.get("error")
    detail = (
        " ".join(str(error).split())[:300]
        if error is not None
        else "not a condition; write one such as eo:cloud_cover < 10"
    )
    raise InvalidSearchError(f"cannot parse cql2-text filter {shown(text, 300)}: {detail}")
