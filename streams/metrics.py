"""Prometheus metrics of a node (one registry per node, served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class NodeMetrics:
    """Counters and histograms every runner updates."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
            buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120),
        )
