"""Small fixes around openeo-processes-dask implementations (kept out of the registry).

- Comparisons and logical processes on SCALARS answer ``true``/``false`` (or ``null``),
  as their openEO specs say, instead of openeo-processes-dask's float ``1.0``/``0.0``/
  ``NaN`` (kept for cubes and arrays, where NaN is nodata).
- On SCALARS, ``gt``/``gte``/``lt``/``lte`` follow their openEO specs: ``null`` if an
  operand is null, ``false`` unless both are numbers; the arithmetic processes answer
  ``null`` for a null operand (openeo-processes-dask raises a TypeError on ``None``).
- ``quantiles`` with ONE probability used as a ``reduce_dimension`` reducer returns one
  value per pixel (the 90th percentile of July rain), as openEO back-ends commonly
  accept, instead of a length-1 array that xarray cannot place.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np


def quantiles(original: Callable[..., Any]) -> Callable[..., Any]:
    def run(data: Any, probabilities: Any = None, q: Any = None, ignore_nodata: bool = True,
            axis: Any = None, keepdims: bool = False) -> Any:  # fmt: skip
        out = original(data, probabilities=probabilities, q=q, ignore_nodata=ignore_nodata,
                       axis=axis, keepdims=keepdims)  # fmt: skip
        single = (
            isinstance(probabilities, list | tuple)
            and len(probabilities) == 1
            and (not isinstance(probabilities[0], int) or isinstance(probabilities[0], bool))
        )
        if axis is not None and single and not keepdims and np.ndim(out) == np.ndim(data):
            out = np.take(out, 0, axis=axis if isinstance(axis, int) else axis[0])
        return out

    run.__name__ = "quantiles"
    return run


def boolean_scalar(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def run(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        if isinstance(out, bool | np.bool_):
            return bool(out)
        if isinstance(out, np.ndarray | np.generic | float | int) and np.ndim(out) == 0:
            value = float(np.asarray(out))
            return None if math.isnan(value) else bool(value)
        return out

    return run


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, bool | int | float | str | np.generic)


def _number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(
        v, bool | np.bool_
    )


def _operands(args: tuple[Any, ...], kwargs: dict[str, Any], names: tuple[str, ...]) -> list[Any]:
    out = list(args[: len(names)])
    out += [kwargs[n] for n in names[len(out) :] if n in kwargs]
    return out


def ordering(op: Callable[[Any, Any], Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def factory(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def run(*args: Any, **kwargs: Any) -> Any:
            ops = _operands(args, kwargs, ("x", "y"))
            if len(ops) == 2 and all(_scalar(v) for v in ops):
                x, y = ops
                if x is None or y is None:
                    return None
                if not (_number(x) and _number(y)):
                    return False
                return bool(op(x, y))
            return original(*args, **kwargs)

        return run

    return factory


def null_propagating(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def run(*args: Any, **kwargs: Any) -> Any:
        ops = _operands(args, kwargs, ("x", "y"))
        if ops and all(_scalar(v) for v in ops) and any(v is None for v in ops):
            return None
        return original(*args, **kwargs)

    return run


NULL_PROPAGATING = ("absolute", "add", "subtract", "multiply", "divide", "power", "mod",
                    "sgn", "sqrt", "exp", "ln", "log", "ceil", "floor", "round", "int",
                    "sin", "cos", "tan", "sinh", "cosh", "tanh", "arcsin", "arccos",
                    "arctan", "arcsinh", "arsinh", "arcosh", "artanh", "arctan2",
                    "normalized_difference")  # fmt: skip

BOOLEAN_PROCESSES = ("eq", "neq", "gt", "gte", "lt", "lte", "between", "and", "or", "xor",
                     "not", "all", "any", "is_nan", "is_nodata", "is_valid",
                     "is_infinite")  # fmt: skip

OVERRIDES: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "quantiles": quantiles,
    **dict.fromkeys(BOOLEAN_PROCESSES, boolean_scalar),
    **dict.fromkeys(NULL_PROPAGATING, null_propagating),
    "gt": ordering(operator.gt),
    "gte": ordering(operator.ge),
    "lt": ordering(operator.lt),
    "lte": ordering(operator.le),
}
