"""One way to declare a module that ships with gravitas (the built-in agents and models).

Every built-in module has the same author, lifecycle and provenance; only its name,
description, where it runs and its schemas differ. :func:`builtin` fills the rest, and
the schema pieces several modules share (a bbox, a date-time) live here once.
"""

from __future__ import annotations

from typing import Any

from gravitas.agents.modules.model import Kind, Module, schema

BUILTIN = {"source": "built-in", "package": "gravitas"}
"""The provenance of every built-in module."""
BBOX = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}
"""West, south, east, north in degrees."""
DATETIME = {"type": "string", "format": "date-time"}


def builtin(
    name: str,
    description: str,
    *,
    kind: Kind,
    target: str,
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    required: list[str] | None = None,
    version: str = "1.0.0",
) -> Module:
    """A published built-in module: ``inputs``/``outputs`` are the schemas' properties,
    ``required`` the inputs a step must give."""
    return Module(
        name=name,
        version=version,
        description=description,
        author="gravitas",
        lifecycle="published",
        kind=kind,
        target=target,
        inputs=schema(inputs, required),
        outputs=schema(outputs),
        provenance=BUILTIN,
    )
