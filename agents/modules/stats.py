"""Small reduction modules for workflows (across ensemble members, scenes, years)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gravitas.agents.modules.context import ModuleContext
from gravitas.agents.modules.errors import ModuleError
from gravitas.agents.modules.model import Module, schema


def quantiles(inputs: dict[str, Any], ctx: ModuleContext) -> dict[str, Any]:
    """Quantiles (linear interpolation, numpy's default) of a list of numbers."""
    values = np.asarray(inputs["values"], dtype=np.float64)
    if values.size == 0:
        raise ModuleError("quantiles of an empty list: the previous step produced no values")
    qs = [float(q) for q in inputs["q"]]
    out = np.quantile(values, qs)
    return {
        "quantiles": {f"q{round(q * 100):02d}": float(v) for q, v in zip(qs, out, strict=True)},
        "spread": float(values.max() - values.min()),
        "count": int(values.size),
    }


QUANTILES = Module(
    name="quantiles",
    version="1.0.0",
    description="Quantiles, spread and count of a list of numbers (e.g. one per ensemble member).",
    author="gravitas",
    lifecycle="published",
    kind="python",
    target="gravitas.agents.modules.stats:quantiles",
    inputs=schema(
        {
            "values": {"type": "array", "items": {"type": "number"}},
            "q": {
                "type": "array",
                "items": {"type": "number", "minimum": 0, "maximum": 1},
                "default": [0.05, 0.5, 0.95],
            },
        },
        ["values"],
    ),
    outputs=schema(
        {
            "quantiles": {"type": "object"},
            "spread": {"type": "number"},
            "count": {"type": "integer"},
        }
    ),
    provenance={"source": "built-in", "package": "gravitas"},
)
