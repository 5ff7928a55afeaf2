"""Small fixes around openeo-processes-dask implementations (kept out of the registry).

- ``quantiles`` with ONE probability used as a ``reduce_dimension`` reducer returns one
  value per pixel (the 90th percentile of July rain), as openEO back-ends commonly
  accept, instead of a length-1 array that xarray cannot place.
"""

from __future__ import annotations

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


OVERRIDES: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {"quantiles": quantiles}
