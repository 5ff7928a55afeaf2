"""``/metrics`` of a node: a real Prometheus scrapes a real Kafka worker and answers a
``kafka_consumergroup_lag`` query; the lag itself checked against the broker's offsets."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from gravitas.schemas.events import Ping
from gravitas.streams.broker import KafkaBroker, create_topics
from gravitas.streams.metrics import NodeMetrics, consumer_group_lag, render, watch_lag
from gravitas.streams.transports.edge import NODE_FILE
from tests.fixtures.nodes import kafka_harness
from tests.fixtures.prometheus import PrometheusServer

pytestmark = pytest.mark.kafka


async def _committed_group(bootstrap: str, topic: str, group: str, produced: int, at: int) -> None:
    """``produced`` records on partition 0 of ``topic``, ``group`` committed at ``at``."""
    await create_topics(bootstrap, {topic: 1})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(produced):
            await producer.send_and_wait(topic, f"r{i}".encode(), partition=0)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    consumer.assign([TopicPartition(topic, 0)])
    await consumer.start()
    try:
        await consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(at, "")})
    finally:
        await consumer.stop()


async def test_lag_is_log_end_minus_committed_offset(
    kafka_broker: KafkaBroker, unique_name: str
) -> None:
    topic, group = f"lag-{unique_name}", f"g-{unique_name}"
    await _committed_group(kafka_broker.bootstrap, topic, group, produced=7, at=2)
    lag = await consumer_group_lag(kafka_broker.bootstrap, [group])
    assert lag == {(group, topic, 0): 5}
    # a group that never committed has no series (like kafka_exporter)
    assert await consumer_group_lag(kafka_broker.bootstrap, [f"none-{unique_name}"]) == {}

    metrics = NodeMetrics()
    watch_lag(metrics, kafka_broker.bootstrap, [group])
    text = (await render(metrics)).decode()
    line = f'kafka_consumergroup_lag{{consumergroup="{group}",partition="0",topic="{topic}"}} 5.0'
    assert line in text


async def test_lag_refresh_failure_keeps_the_scrape_answering() -> None:
    metrics = NodeMetrics()
    watch_lag(metrics, "127.0.0.1:1", ["nobody"])  # no broker there
    text = (await render(metrics)).decode()
    assert "# TYPE kafka_consumergroup_lag gauge" in text
    assert "kafka_consumergroup_lag{" not in text


@pytest.mark.slow
async def test_real_prometheus_scrapes_a_kafka_node_and_answers_a_lag_query(
    kafka_broker: KafkaBroker,
    tmp_path: Path,
    unique_name: str,
    prometheus_server: Callable[[list[str]], PrometheusServer],
) -> None:
    async with kafka_harness(tmp_path, kafka_broker.bootstrap, unique_name) as h:
        info = orjson.loads((h.data_dir / NODE_FILE).read_bytes())
        edge = info["edge_url"]
        ids = [f"m-{i}-{uuid.uuid4().hex[:6]}" for i in range(20)]
        for rid in ids:
            await h.client.publish(Ping(request_id=rid))
        await h.collect(
            "ops.pong", lambda evs: set(ids) <= {getattr(e, "request_id", "") for e in evs}
        )
        async with httpx.AsyncClient() as http:
            own = (await http.get(f"{edge}/metrics")).text
        assert "gravitas_blockstore_seconds" in own or "gravitas_catalog_seconds" in own

        prom = await asyncio.to_thread(prometheus_server, [edge.removeprefix("http://")])
        group = f"g-{unique_name}"
        query = f'kafka_consumergroup_lag{{consumergroup="{group}"}}'

        def caught_up(result: list[dict[str, object]]) -> bool:
            return bool(result) and all(r["value"][1] == "0" for r in result)  # type: ignore[index]

        result = await asyncio.to_thread(prom.wait_for, query, caught_up)
        topics = {r["metric"]["topic"] for r in result}
        assert h.client.topology.physical("ops.ping") in topics, topics
        assert all(r["metric"]["consumergroup"] == group for r in result)
        # the same as the broker says, computed here independently of the node
        direct = await consumer_group_lag(kafka_broker.bootstrap, [group])
        assert {(g, t, str(p)) for g, t, p in direct} == {
            (r["metric"]["consumergroup"], r["metric"]["topic"], r["metric"]["partition"])
            for r in result
        }

        pings = await asyncio.to_thread(
            prom.wait_for,
            'sum(gravitas_events_processed_total{agent="ping"})',
            lambda r: bool(r) and float(r[0]["value"][1]) >= len(ids),
        )
        assert float(pings[0]["value"][1]) >= len(ids)
        durations = await asyncio.to_thread(
            prom.wait_for,
            'gravitas_http_request_seconds_count{kind="GET /metrics"}',
            lambda r: bool(r) and float(r[0]["value"][1]) >= 1,
        )
        assert durations[0]["metric"]["status"] == "2xx"
