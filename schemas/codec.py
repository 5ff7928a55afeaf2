"""orjson encoding of events, and decoding bytes into the right event class.

No pickle anywhere: events are JSON on the wire.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from gravitas.schemas.base import Event
from gravitas.schemas.errors import EventDecodeError, EventValidationError


def encode(event: Event) -> bytes:
    """Serialise an event to compact JSON bytes."""
    return orjson.dumps(event.model_dump(mode="json"))


def describe_validation_error(exc: ValidationError) -> str:
    """One readable line per problem: ``field.path: message (got value)``."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(event)"
        got = err.get("input")
        shown = repr(got) if not isinstance(got, dict) else "{...}"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        parts.append(f"{where}: {err['msg']} (got {shown})")
    return "; ".join(parts)


def parse_json(payload: bytes | str) -> dict[str, Any]:
    """Decode JSON text into an object, or raise :class:`EventDecodeError`."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise EventDecodeError(f"payload is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise EventDecodeError(f"payload must be a JSON object, got {type(data).__name__}")
    return data


def from_dict(data: dict[str, Any], types: Sequence[type[Event]]) -> Event:
    """Validate a dict as one of ``types``, chosen by its ``type`` field."""
    if not types:
        raise EventValidationError("no event types declared for this topic")
    by_type = {t.TYPE: t for t in types}
    declared = data.get("type")
    if declared is None and len(types) == 1:
        cls = types[0]
    elif declared in by_type:
        cls = by_type[declared]
    else:
        known = ", ".join(sorted(by_type))
        raise EventValidationError(
            f"type {declared!r} is not carried by this topic (expected one of: {known})"
        )
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise EventValidationError(f"{cls.__name__}: {describe_validation_error(exc)}") from exc


def decode(payload: bytes | str, types: Sequence[type[Event]]) -> Event:
    """Bytes -> event, raising :class:`EventDecodeError` or :class:`EventValidationError`.

    Single-type topics take pydantic's JSON fast path; errors are reported the same way.
    """
    if len(types) == 1:
        cls = types[0]
        try:
            return cls.model_validate_json(payload)
        except ValidationError as exc:
            if not any(e["type"] == "json_invalid" for e in exc.errors()):
                data = parse_json(payload)  # a non-object is a decode error, not a schema one
                declared = data.get("type", cls.TYPE)
                if declared != cls.TYPE:
                    raise EventValidationError(
                        f"type {declared!r} is not carried by this topic (expected {cls.TYPE})"
                    ) from exc
                raise EventValidationError(
                    f"{cls.__name__}: {describe_validation_error(exc)}"
                ) from exc
    return from_dict(parse_json(payload), types)
