"""User math over bands, compiled from an allow-listed syntax tree: never ``eval``.

``compile_expression("(nir - red) / (nir + red)", names={"nir", "red"})`` parses the text
with :func:`ast.parse` and accepts only names of bands, numbers, arithmetic, comparisons,
boolean operators, conditional expressions and calls to the functions in
:data:`FUNCTIONS`. Everything else (attributes, subscripts, strings, lambdas,
comprehensions, keywords, starred arguments, walrus, f-strings) is refused with a message
naming the fragment and its column. Limits bound the text, the node count, the nesting,
the constants and the exponents, so a request cannot ask for ``9 ** 9 ** 9``.

The compiled :class:`Expression` evaluates on numpy arrays, xarray DataArrays or dask
arrays alike (numpy ufuncs and :func:`numpy.where` dispatch to them), lazily where the
inputs are lazy. ``eval``, ``numexpr.evaluate`` and ``asteval`` are never used: each has a
history of sandbox escapes (see ../shared/OPENEO.md).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gravitas.schemas.errors import InputError


class ExpressionError(InputError):
    """A user expression that is not allowed or cannot be evaluated as asked."""


@dataclass(frozen=True)
class Limits:
    """Bounds on what one expression may ask for."""

    max_chars: int = 2000
    """Longest expression text."""
    max_nodes: int = 400
    """Most syntax-tree nodes."""
    max_depth: int = 40
    """Deepest nesting of operations."""
    max_exponent: float = 64.0
    """Largest |exponent| of ``**``; the exponent must be a constant."""
    max_constant: float = 1e308
    """Largest |number| written in the expression."""
    max_bytes: int = 2 * 1024**3
    """Most memory the intermediate arrays may take at once (per chunk for lazy inputs)."""


DEFAULT_LIMITS = Limits()


def _where(cond: Any, a: Any, b: Any) -> Any:
    return np.where(cond, a, b) if not hasattr(cond, "where") else _xr_where(cond, a, b)


def _xr_where(cond: Any, a: Any, b: Any) -> Any:
    import xarray as xr

    return xr.where(cond, a, b)


FUNCTIONS: dict[str, tuple[Callable[..., Any], int]] = {
    # name: (implementation, number of arguments)
    "where": (_where, 3),
    "abs": (np.abs, 1),
    "sqrt": (np.sqrt, 1),
    "exp": (np.exp, 1),
    "log": (np.log, 1),
    "log10": (np.log10, 1),
    "log1p": (np.log1p, 1),
    "sin": (np.sin, 1),
    "cos": (np.cos, 1),
    "tan": (np.tan, 1),
    "arcsin": (np.arcsin, 1),
    "arccos": (np.arccos, 1),
    "arctan": (np.arctan, 1),
    "arctan2": (np.arctan2, 2),
    "floor": (np.floor, 1),
    "ceil": (np.ceil, 1),
    "round": (np.round, 1),
    "minimum": (np.fmin, 2),
    "maximum": (np.fmax, 2),
    "clip": (np.clip, 3),
    "isnan": (np.isnan, 1),
    "isfinite": (np.isfinite, 1),
}
"""The only functions an expression may call, with their arity."""

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "nan": math.nan}

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: np.logical_not,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_ALLOWED = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Call,
    ast.Name, ast.Constant, ast.Load, ast.And, ast.Or,
    *_BINARY, *_UNARY, *_COMPARE,
)  # fmt: skip
_WHAT = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambdas",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.JoinedStr: "strings",
    ast.NamedExpr: "assignment (:=)",
    ast.Starred: "starred arguments",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}


def _refuse(text: str, node: ast.AST | None, why: str) -> ExpressionError:
    col = getattr(node, "col_offset", None)
    end = getattr(node, "end_col_offset", None)
    where = ""
    if col is not None:
        fragment = text[col:end] if end is not None else text[col:]
        if len(fragment) > 40:
            fragment = fragment[:37] + "..."
        where = f" at column {col + 1} ({fragment!r})"
    allowed = ", ".join(sorted(FUNCTIONS))
    return ExpressionError(
        f"expression {_short(text)}: {why}{where}; use band names, numbers, + - * / // % **, "
        f"comparisons, and/or/not, 'a if c else b' and the functions {allowed}"
    )


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


@dataclass(frozen=True)
class Expression:
    """A checked expression: evaluate it with :meth:`evaluate`."""

    text: str
    tree: ast.Expression
    names: frozenset[str]
    """The band names it reads."""
    nodes: int
    """Its size in syntax-tree nodes (a bound on the intermediate arrays it makes)."""
    limits: Limits = DEFAULT_LIMITS

    def peak_bytes(self, bands: Mapping[str, Any]) -> int:
        """An upper bound of the memory its intermediate arrays take at once: one float64
        array (one chunk, for lazy inputs) per syntax node."""
        largest = max((_chunk_elements(bands[n]) for n in self.names), default=1)
        return self.nodes * largest * 8

    def evaluate(self, bands: Mapping[str, Any]) -> Any:
        """The expression's value over ``bands`` (arrays of one shape, or broadcastable)."""
        missing = self.names - set(bands)
        if missing:
            raise ExpressionError(
                f"expression {_short(self.text)} reads {sorted(missing)}, which the data lacks; "
                f"it has {sorted(bands)}"
            )
        need = self.peak_bytes(bands)
        if need > self.limits.max_bytes:
            raise ExpressionError(
                f"expression {_short(self.text)} would hold up to {_size(need)} of "
                f"intermediate arrays, over the limit of {_size(self.limits.max_bytes)}; "
                "ask for a smaller region or a coarser level, or use chunked (lazy) inputs"
            )
        with np.errstate(all="ignore"):
            return _Evaluator(self.text, bands).visit(self.tree.body)


class _Evaluator:
    def __init__(self, text: str, bands: Mapping[str, Any]) -> None:
        self.text = text
        self.bands = bands

    def visit(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):  # numpy scalars: 0/0 is nan, not an exception
            v = node.value
            return np.bool_(v) if isinstance(v, bool) else np.float64(v)  # type: ignore[arg-type]
        if isinstance(node, ast.Name):
            return self.bands[node.id] if node.id in self.bands else np.float64(CONSTANTS[node.id])
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](self.visit(node.left), self.visit(node.right))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self.visit(node.operand))
        if isinstance(node, ast.BoolOp):
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            values = [self.visit(v) for v in node.values]
            out = values[0]
            for v in values[1:]:
                out = combine(out, v)
            return out
        if isinstance(node, ast.Compare):
            left = self.visit(node.left)
            result: Any = None
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = self.visit(right_node)
                step = _COMPARE[type(op)](left, right)
                result = step if result is None else np.logical_and(result, step)
                left = right
            return result
        if isinstance(node, ast.IfExp):
            return _where(self.visit(node.test), self.visit(node.body), self.visit(node.orelse))
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            fn, _ = FUNCTIONS[node.func.id]
            return fn(*(self.visit(a) for a in node.args))
        raise _refuse(self.text, node, f"{type(node).__name__} is not allowed")


def compile_expression(
    text: str, names: set[str] | frozenset[str], limits: Limits = DEFAULT_LIMITS
) -> Expression:
    """Check ``text`` against the allow-list and the limits; the names it may read are
    ``names`` (the bands of the data) and :data:`CONSTANTS`."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be text, got {type(text).__name__}")
    if len(text) > limits.max_chars:
        raise ExpressionError(
            f"expression of {len(text)} characters is longer than the limit of "
            f"{limits.max_chars}; split the computation into steps"
        )
    if not text.strip():
        raise ExpressionError("the expression is empty; write e.g. '(nir - red) / (nir + red)'")
    if "\x00" in text:
        raise ExpressionError(f"expression {_short(text)} contains a NUL character")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        col = f" at column {exc.offset}" if exc.offset else ""
        raise ExpressionError(
            f"expression {_short(text)} is not valid syntax{col}: {exc.msg}"
        ) from None
    except (ValueError, RecursionError, MemoryError):
        raise ExpressionError(
            f"expression {_short(text)} cannot be parsed (too deep or invalid)"
        ) from None
    text = text.strip()
    bad_names = set(names) & set(FUNCTIONS)
    if bad_names:
        raise ExpressionError(f"band names {sorted(bad_names)} clash with function names")
    count = 0
    read: set[str] = set()
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > limits.max_nodes:
            raise _refuse(text, None, f"more than {limits.max_nodes} syntax nodes")
        if depth > limits.max_depth:
            raise _refuse(text, node, f"nesting deeper than {limits.max_depth}")
        _check_node(text, node, names, limits)
        if isinstance(node, ast.Name) and node.id in names:
            read.add(node.id)
        children: list[ast.AST] = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.Call):
            children = list(node.args)  # the function name was checked on its own
        stack.extend((c, depth + 1) for c in children)
    return Expression(text=text, tree=tree, names=frozenset(read), nodes=count, limits=limits)


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def _chunk_elements(value: Any) -> int:
    """Elements of the largest chunk of a dask-backed value, else of the whole array."""
    data = getattr(value, "data", value)
    chunks = getattr(data, "chunks", None)
    if chunks and all(isinstance(c, tuple) for c in chunks):
        return int(np.prod([max(c) if c else 1 for c in chunks]))
    return int(np.size(value))


def _check_node(text: str, node: ast.AST, names: set[str] | frozenset[str], lim: Limits) -> None:
    if not isinstance(node, _ALLOWED):
        what = _WHAT.get(type(node), f"{type(node).__name__} syntax")
        raise _refuse(text, node, f"{what} are not allowed" if what.endswith("s") else
                      f"{what} is not allowed")  # fmt: skip
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool):
            return
        if not isinstance(v, int | float):
            kind = "strings" if isinstance(v, str | bytes) else f"{type(v).__name__} constants"
            raise _refuse(text, node, f"{kind} are not allowed")
        if abs(v) > lim.max_constant:
            raise _refuse(text, node, f"the number is larger than {lim.max_constant:g}")
    elif isinstance(node, ast.Name):
        if node.id not in names and node.id not in CONSTANTS:
            if node.id in FUNCTIONS:
                raise _refuse(text, node, f"function {node.id} must be called")
            known = ", ".join(sorted(names)) or "none"
            raise _refuse(text, node, f"unknown name {node.id!r} (the bands are: {known})")
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise _refuse(text, node.func, "only the listed functions may be called")
        if node.keywords:
            raise _refuse(text, node, "keyword arguments are not allowed")
        _, arity = FUNCTIONS[node.func.id]
        if len(node.args) != arity:
            raise _refuse(
                text, node, f"{node.func.id} takes {arity} argument(s), got {len(node.args)}"
            )
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        exponent = node.right
        if isinstance(exponent, ast.UnaryOp) and isinstance(exponent.op, ast.USub | ast.UAdd):
            exponent = exponent.operand
        if not isinstance(exponent, ast.Constant) or isinstance(exponent.value, bool):
            raise _refuse(text, node.right, "the exponent of ** must be a number")
        if not isinstance(exponent.value, int | float) or abs(exponent.value) > lim.max_exponent:
            raise _refuse(text, node.right, f"exponents are limited to +-{lim.max_exponent:g}")
