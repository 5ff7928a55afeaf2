"""Turn any error a command meets into one line a user can act on.

Validation errors name the field, the value given and the rule; gravitas errors keep
their own message; anything unexpected is one line with its class, and the traceback is
printed only when ``GRAVITAS_TRACEBACK=1`` asks for it.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import ValidationError

from gravitas.schemas.errors import GravitasError

MAX_VALUE_CHARS = 80


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


def describe_validation(exc: ValidationError) -> str:
    """``Model.field: rule (got value)`` for each error, joined by ``; ``."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err.get("loc", ())) or "value"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{exc.title}.{where}: {msg} (got {_shown(err.get('input'))})")
    return "; ".join(parts)


def describe(exc: BaseException) -> str:
    """One line naming the error's class and the bad value."""
    if isinstance(exc, ValidationError):
        return f"invalid input: {describe_validation(exc)}"
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, GravitasError) and isinstance(cause, ValidationError):
        return f"{type(exc).__name__}: {exc}"
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"


def wants_traceback() -> bool:
    """True when the user asked for Python tracebacks (GRAVITAS_TRACEBACK=1)."""
    return os.environ.get("GRAVITAS_TRACEBACK", "").lower() in {"1", "true", "yes"}
