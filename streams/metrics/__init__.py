"""The one metrics module of a node (Prometheus text format at ``/metrics``).

API (see docs/metrics.md for every metric name and label):

- :class:`NodeMetrics` — one per node: ``registry`` (a ``CollectorRegistry``) and the
  counters/histograms runners and the edge update (``processed``, ``rejected``,
  ``retries``, ``published``, ``latency``, ``requests``, ``webhooks_received``,
  ``webhook_deliveries``, ``webhook_deadletters``); ``add_refresher(coro_fn)`` registers
  work awaited before each scrape, ``await refresh()`` runs it.
- :func:`watch_lag` — adds ``kafka_consumergroup_lag{consumergroup,topic,partition}``
  (queried from the broker per scrape); :func:`consumer_group_lag` is the query.
- :data:`STORAGE_REGISTRY`, :func:`timed_block_store`, :func:`timed_catalog` —
  process-wide block-store and catalog latencies.
- :class:`RequestTimer` — ASGI middleware for ``gravitas_http_request_seconds``.
- :func:`render` — the text exposition of a node: ``await render(metrics)``.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gravitas.streams.metrics.http import RequestTimer
from gravitas.streams.metrics.lag import LagCollector, consumer_group_lag, watch_lag
from gravitas.streams.metrics.node import NodeMetrics
from gravitas.streams.metrics.storage import (
    STORAGE_REGISTRY,
    timed_block_store,
    timed_catalog,
)

__all__ = [
    "CONTENT_TYPE_LATEST",
    "STORAGE_REGISTRY",
    "LagCollector",
    "NodeMetrics",
    "RequestTimer",
    "consumer_group_lag",
    "render",
    "timed_block_store",
    "timed_catalog",
    "watch_lag",
]


async def render(metrics: NodeMetrics) -> bytes:
    """Refresh scrape-time collectors, then the exposition of the node's registry and the
    process-wide storage registry."""
    await metrics.refresh()
    return generate_latest(metrics.registry) + generate_latest(STORAGE_REGISTRY)
