"""Translate a subset of CQL2-JSON into an SQLite WHERE clause over the items table.

Supported: ``and or not``, ``= <> < <= > >=``, ``like``, ``in``, ``between``,
``isNull``, arithmetic ``+ - * /``, spatial ``s_intersects`` (and the other ``s_*``
predicates) evaluated with shapely through an SQL function, and property / string /
number / boolean / ``timestamp`` / ``date`` / geometry / ``bbox`` literals. Anything else
raises :class:`UnsupportedFilterError` naming the operator.

Property names never reach the SQL text: an item property becomes
``json_extract(items.doc, ?)`` with its JSON path bound as a parameter, after
:func:`~gravitas.storage.catalog.search_checks.check_property_name` refused the names a
JSON path cannot express. Operators come from fixed tables; every literal is bound.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from gravitas.storage.catalog.base import parse_datetime, utc_text
from gravitas.storage.catalog.errors import InvalidSearchError, UnsupportedFilterError
from gravitas.storage.catalog.geometry import SPATIAL_OPS, geometry_from_json
from gravitas.storage.catalog.search_checks import check_property_name, shown

__all__ = ["SUPPORTED_OPS", "column_for", "format_ts", "named_column", "to_sql"]

_COMPARE = {"=": "=", "<>": "<>", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_ARITH = {"+": "+", "-": "-", "*": "*", "/": "/"}
SUPPORTED_OPS = frozenset(
    {"and", "or", "not", "like", "in", "between", "isNull"} | set(_COMPARE) | set(_ARITH)
) | frozenset(SPATIAL_OPS)
"""Every CQL2 operator :func:`to_sql` translates."""

_COLUMNS = {
    "id": "items.id",
    "collection": "items.collection",
    "datetime": "items.dt_start",
    "start_datetime": "items.dt_start",
    "end_datetime": "items.dt_end",
    "geometry": "items.geometry",
}
_TIME_COLUMNS = {"items.dt_start", "items.dt_end"}


def format_ts(text: str) -> str:
    """An RFC 3339 timestamp as fixed-width UTC text, so strings sort as times."""
    return utc_text(parse_datetime(text, strict=False))


def named_column(name: str) -> str | None:
    """The items column a property name maps to (``datetime``, ``id``, ...), or None."""
    return _COLUMNS.get(name.removeprefix("properties."))


def column_for(name: Any, bind: Callable[[Any], str], where: str = "filter") -> str:
    """SQL expression of an item property (``properties.`` prefix optional): a column,
    or ``json_extract`` with the JSON path passed to ``bind`` (which returns ``?``)."""
    bare = check_property_name(name, where)
    if bare in _COLUMNS:
        return _COLUMNS[bare]
    path = '$.properties."' + bare + '"'
    return f"json_extract(items.doc, {bind(path)})"


class _Translator:
    def __init__(self) -> None:
        self.params: list[Any] = []

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def expr(self, node: Any) -> str:
        if isinstance(node, bool):
            return "1" if node else "0"
        if not isinstance(node, Mapping):
            raise InvalidSearchError(f"CQL2 expression must be an object, got {shown(node)}")
        if "op" not in node:
            raise InvalidSearchError(f"CQL2 expression has no 'op': {shown(node)}")
        op = str(node["op"])
        args = node.get("args", [])
        if not isinstance(args, list):
            raise InvalidSearchError(f"CQL2 {shown(op)} args must be a list, got {shown(args)}")
        handler: Callable[[str, list[Any]], str] | None = None
        if op in ("and", "or"):
            handler = self.logical
        elif op == "not":
            handler = self.negate
        elif op in _COMPARE:
            handler = self.compare
        elif op == "like":
            handler = self.like
        elif op == "in":
            handler = self.inlist
        elif op == "between":
            handler = self.between
        elif op == "isNull":
            handler = self.isnull
        elif op in SPATIAL_OPS:
            handler = self.spatial
        if handler is None:
            raise UnsupportedFilterError(
                f"CQL2 operator {shown(op)} is not supported by the SQLite catalog; "
                f"use one of {sorted(SUPPORTED_OPS)}"
            )
        return handler(op, args)

    def _arity(self, op: str, args: list[Any], n: int) -> None:
        if len(args) != n:
            raise InvalidSearchError(f"CQL2 '{op}' takes {n} arguments, got {len(args)}")

    def logical(self, op: str, args: list[Any]) -> str:
        if len(args) < 2:
            raise InvalidSearchError(f"CQL2 '{op}' needs at least 2 arguments, got {len(args)}")
        return "(" + f" {op.upper()} ".join(self.expr(a) for a in args) + ")"

    def negate(self, op: str, args: list[Any]) -> str:
        self._arity(op, args, 1)
        return f"(NOT {self.expr(args[0])})"

    def compare(self, op: str, args: list[Any]) -> str:
        self._arity(op, args, 2)
        timeish = any(self._is_time(a) for a in args)
        left, right = (self.operand(a, timeish) for a in args)
        return f"({left} {_COMPARE[op]} {right})"

    def like(self, op: str, args: list[Any]) -> str:
        self._arity(op, args, 2)
        left, right = (self.operand(a) for a in args)
        return f"({left} LIKE {right} ESCAPE '\\')"

    def inlist(self, op: str, args: list[Any]) -> str:
        self._arity(op, args, 2)
        values = args[1]
        if not isinstance(values, list) or not values:
            raise InvalidSearchError(f"CQL2 'in' needs a non-empty list, got {shown(values)}")
        timeish = self._is_time(args[0]) or any(self._is_time(v) for v in values)
        left = self.operand(args[0], timeish)
        return f"({left} IN ({', '.join(self.operand(v, timeish) for v in values)}))"

    def between(self, op: str, args: list[Any]) -> str:
        if len(args) == 2 and isinstance(args[1], list):  # older [prop, [lo, hi]] form
            args = [args[0], *args[1]]
        self._arity(op, args, 3)
        timeish = any(self._is_time(a) for a in args)
        a, lo, hi = (self.operand(x, timeish) for x in args)
        return f"({a} BETWEEN {lo} AND {hi})"

    def isnull(self, op: str, args: list[Any]) -> str:
        self._arity(op, args, 1)
        return f"({self.operand(args[0])} IS NULL)"

    def spatial(self, op: str, args: list[Any]) -> str:
        self._arity(op, args, 2)
        left, right = (self.geometry(a) for a in args)
        return f"(gv_spatial('{SPATIAL_OPS[op]}', {left}, {right}) = 1)"

    def geometry(self, node: Any) -> str:
        if isinstance(node, Mapping) and "property" in node:
            return self.operand(node)
        if isinstance(node, Mapping) and ("type" in node or "bbox" in node):
            geometry_from_json(node)  # refuse a malformed literal here, naming it
            return self.bind(orjson.dumps(node).decode())
        raise InvalidSearchError(f"CQL2 spatial argument must be a geometry or bbox: {shown(node)}")

    @staticmethod
    def _is_time(node: Any) -> bool:
        if isinstance(node, Mapping):
            if "timestamp" in node or "date" in node:
                return True
            if "property" in node and isinstance(node["property"], str):
                return named_column(node["property"]) in _TIME_COLUMNS
        return False

    def operand(self, node: Any, timeish: bool = False) -> str:
        if isinstance(node, bool):
            return "1" if node else "0"
        if isinstance(node, int | float):
            return self.bind(node)
        if isinstance(node, str):
            return self.bind(format_ts(node) if timeish else node)
        if isinstance(node, Mapping):
            if "property" in node:
                col = column_for(node["property"], self.bind)
                if timeish and col not in _TIME_COLUMNS:
                    return f"gv_ts({col})"
                return col
            if "timestamp" in node:
                return self.bind(format_ts(str(node["timestamp"])))
            if "date" in node:
                return self.bind(format_ts(str(node["date"])))
            if "interval" in node:
                raise UnsupportedFilterError(
                    "CQL2 interval literals (temporal operators) are not supported; "
                    "use the datetime search parameter or compare datetime with <, >"
                )
            if "op" in node and isinstance(node["op"], str) and node["op"] in _ARITH:
                args = node.get("args", [])
                if not isinstance(args, list):
                    raise InvalidSearchError(
                        f"CQL2 '{node['op']}' args must be a list, got {shown(args)}"
                    )
                self._arity(node["op"], args, 2)
                a, b = (self.operand(x) for x in args)
                return f"({a} {_ARITH[node['op']]} {b})"
            if "op" in node:
                return self.expr(node)
        if node is None:
            return "NULL"
        raise UnsupportedFilterError(f"CQL2 operand {shown(node)} is not supported")


def to_sql(cql2_json: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """A CQL2-JSON filter as ``(sql, params)`` for a WHERE clause on ``items``."""
    translator = _Translator()
    sql = translator.expr(cql2_json)
    return sql, translator.params
