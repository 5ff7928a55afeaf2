"""``kafka_consumergroup_lag{consumergroup,topic,partition}``, as stock Kafka dashboards
(kafka_exporter's names) expect: the log-end offset minus the group's committed offset,
for every partition the group has committed, read from the broker at scrape time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gravitas.streams.metrics.node import NodeMetrics

LagSnapshot = dict[tuple[str, str, int], int]
"""(group, topic, partition) -> lag in records."""


async def consumer_group_lag(bootstrap: str, groups: Sequence[str]) -> LagSnapshot:
    """The lag of each committed partition of ``groups`` (one admin and one consumer
    connection, closed before returning)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    try:
        committed: dict[tuple[str, TopicPartition], int] = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            for tp, meta in offsets.items():
                if meta.offset >= 0:
                    committed[(group, tp)] = meta.offset
        if not committed:
            return {}
        await consumer.start()
        ends = await consumer.end_offsets(sorted({tp for _, tp in committed}))
    finally:
        await admin.close()
        await consumer.stop()
    return {
        (group, tp.topic, tp.partition): max(0, ends[tp] - offset)
        for (group, tp), offset in committed.items()
    }


class LagCollector(Collector):
    """Serves the last :class:`LagSnapshot` (refreshed by :func:`watch_lag`)."""

    def __init__(self) -> None:
        self.snapshot: LagSnapshot = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "kafka_consumergroup_lag",
            "Records between a consumer group's committed offset and the log end",
            labels=["consumergroup", "topic", "partition"],
        )
        for (group, topic, partition), lag in sorted(self.snapshot.items()):
            family.add_metric([group, topic, str(partition)], lag)
        yield family


def watch_lag(metrics: NodeMetrics, bootstrap: str, groups: Sequence[str]) -> LagCollector:
    """Register the lag of ``groups`` on ``metrics`` (queried from the broker per scrape)."""
    collector = LagCollector()
    metrics.registry.register(collector)

    async def refresh() -> None:
        collector.snapshot = await consumer_group_lag(bootstrap, list(groups))

    metrics.add_refresher(refresh)
    return collector
