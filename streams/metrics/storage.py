"""Block-store and catalog call latencies, process-wide (the stores are opened by
:class:`gravitas.agents.services.NodeServices`, which does not know its node's
:class:`NodeMetrics`); ``/metrics`` serves this registry next to the node's."""

from __future__ import annotations

import time
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Histogram

from gravitas.streams.metrics.node import LATENCY_BUCKETS

STORAGE_REGISTRY = CollectorRegistry()

BLOCKSTORE_SECONDS = Histogram(
    "gravitas_blockstore_seconds",
    "Duration of block-store calls, by operation",
    ["backend", "op"],
    registry=STORAGE_REGISTRY,
    buckets=LATENCY_BUCKETS,
)
CATALOG_SECONDS = Histogram(
    "gravitas_catalog_seconds",
    "Duration of STAC catalog calls, by operation",
    ["backend", "op"],
    registry=STORAGE_REGISTRY,
    buckets=LATENCY_BUCKETS,
)

T = TypeVar("T")


class _Timed:
    """Forwards every attribute to the wrapped store; public method calls are timed."""

    def __init__(self, target: Any, histogram: Histogram) -> None:
        self._target = target
        self._histogram = histogram
        self._backend = type(target).__name__

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return type(self._target)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (e.g. to dask workers) as the wrapped store, timed again there."""
        return (_rewrap, (self._target, self._histogram is CATALOG_SECONDS))

    def __getattr__(self, name: str) -> Any:
        if name in ("_target", "_histogram", "_backend"):
            raise AttributeError(name)  # during unpickling/copying, before __init__
        value = getattr(self._target, name)
        if name.startswith("_") or not callable(value):
            return value
        child = self._histogram.labels(self._backend, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                child.observe(time.perf_counter() - start)

        return timed


def _rewrap(target: Any, catalog: bool) -> Any:
    return _Timed(target, CATALOG_SECONDS if catalog else BLOCKSTORE_SECONDS)


def timed_store(target: T, histogram: Histogram) -> T:
    """``target`` with the duration of each public method call observed in ``histogram``
    (labels: backend class name, method name). Generators are timed until they return
    their iterator, not until exhausted."""
    wrapped: Any = _Timed(target, histogram)
    out: T = wrapped
    return out


def timed_block_store(store: T) -> T:
    """A block store whose calls are observed in ``gravitas_blockstore_seconds``."""
    return timed_store(store, BLOCKSTORE_SECONDS)


def timed_catalog(catalog: T) -> T:
    """A catalog whose calls are observed in ``gravitas_catalog_seconds``."""
    return timed_store(catalog, CATALOG_SECONDS)
