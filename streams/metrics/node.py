"""The metrics of one node: one :class:`CollectorRegistry` per node, served at ``/metrics``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

log = logging.getLogger("gravitas.metrics")

LATENCY_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120)

Refresher = Callable[[], Awaitable[None]]


class NodeMetrics:
    """Counters and histograms every runner, the edge and the webhook workers update.

    Names (Prometheus adds ``_total`` to counters and ``_bucket``/``_sum``/``_count`` to
    histograms) are listed in docs/metrics.md. Collectors computed at scrape time (the
    consumer-group lag) register an async :meth:`add_refresher` that ``/metrics`` awaits
    before it renders the registry.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._refreshers: list[Refresher] = []
        self.processed = Counter(
            "gravitas_events_processed",
            "Events an agent handled successfully",
            ["agent", "topic"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "gravitas_events_rejected",
            "Events dead-lettered, by error class",
            ["agent", "topic", "error_class"],
            registry=self.registry,
        )
        self.retries = Counter(
            "gravitas_event_retries",
            "Retries of transient failures",
            ["agent", "error_class"],
            registry=self.registry,
        )
        self.published = Counter(
            "gravitas_events_published",
            "Events published, by topic",
            ["topic"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gravitas_handle_seconds",
            "Time an agent spent on one event",
            ["agent"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.requests = Histogram(
            "gravitas_http_request_seconds",
            "Duration of HTTP requests to the edge, by kind (method and route template)",
            ["kind", "status"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.webhooks_received = Counter(
            "gravitas_webhooks_received",
            "Inbound webhook calls, by source and outcome (published, duplicate, or the "
            "refusal reason)",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "gravitas_webhook_deliveries",
            "Outbound webhook delivery attempts, by HTTP status (or timeout/error)",
            ["status"],
            registry=self.registry,
        )
        self.webhook_deadletters = Counter(
            "gravitas_webhook_deadletters",
            "Outbound deliveries given up, by reason class",
            ["reason"],
            registry=self.registry,
        )

    def add_refresher(self, refresh: Refresher) -> None:
        """Run ``refresh`` before every scrape (e.g. to query the broker for lag)."""
        self._refreshers.append(refresh)

    async def refresh(self, timeout_s: float = 5.0) -> None:
        """Await every refresher (each bounded by ``timeout_s``; a failure keeps the
        previous values and is logged, never fails the scrape)."""
        for refresh in self._refreshers:
            try:
                await asyncio.wait_for(refresh(), timeout_s)
            except Exception as exc:
                log.warning("metrics refresh %s failed: %s", refresh, exc)
