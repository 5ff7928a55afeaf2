"""The local Apache Kafka broker, against the real broker (no mocks)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from gravitas.schemas.errors import BrokerError, InputError
from gravitas.streams.broker import (
    KAFKA_VERSION,
    KafkaBroker,
    create_topics,
    create_topics_sync,
    ensure_kafka_jars,
)
from gravitas.streams.broker.admin import partition_counts
from gravitas.streams.broker.config import formatted_cluster_id
from gravitas.streams.broker.errors import TopicMismatchError
from gravitas.streams.broker.jars import pom_bytes

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]


async def _produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def _consume(
    bootstrap: str, topic: str, group: str, count: int, timeout: float = 60
) -> list[tuple[bytes | None, bytes | None]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    got: list[tuple[bytes | None, bytes | None]] = []
    try:
        async with asyncio.timeout(timeout):
            while len(got) < count:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    got.extend((r.key, r.value) for r in records)
    finally:
        await consumer.stop()
    return got


async def _counts(bootstrap: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return await partition_counts(admin)
    finally:
        await admin.close()


def test_pom_pins_the_kafka_version() -> None:
    pom = pom_bytes().decode()
    assert f"<kafka.version>{KAFKA_VERSION}</kafka.version>" in pom
    assert "log4j-slf4j-impl" in pom


def test_broker_addresses(kafka_broker: KafkaBroker) -> None:
    assert kafka_broker.running
    assert kafka_broker.bootstrap == f"127.0.0.1:{kafka_broker.port}"
    assert kafka_broker.url == f"kafka://127.0.0.1:{kafka_broker.port}"
    props = (kafka_broker.data_dir / "server.properties").read_text()
    assert f"advertised.listeners=PLAINTEXT://{kafka_broker.bootstrap}" in props
    assert "process.roles=broker,controller" in props


async def test_produce_and_consume(kafka_broker: KafkaBroker, unique_name: str) -> None:
    topic = f"t-{unique_name}"
    sent = [(f"k{i}".encode(), f"message {i}".encode()) for i in range(5)]
    await create_topics(kafka_broker.bootstrap, {topic: 1})
    await _produce(kafka_broker.bootstrap, topic, sent)
    got = await _consume(kafka_broker.bootstrap, topic, f"g-{unique_name}", len(sent))
    assert got == sent


async def test_create_topics_partitions_idempotent_and_mismatch(
    kafka_broker: KafkaBroker, unique_name: str
) -> None:
    wide, narrow = f"wide-{unique_name}", f"narrow-{unique_name}"
    await create_topics(kafka_broker.bootstrap, {wide: 4, narrow: 1})
    counts = await _counts(kafka_broker.bootstrap)
    assert counts[wide] == 4
    assert counts[narrow] == 1

    await create_topics(kafka_broker.bootstrap, {wide: 4, narrow: 1})  # idempotent
    assert (await _counts(kafka_broker.bootstrap))[wide] == 4

    with pytest.raises(TopicMismatchError) as info:
        await create_topics(kafka_broker.bootstrap, {wide: 2})
    message = str(info.value)
    assert wide in message
    assert "4 partition(s), expected 2" in message
    assert isinstance(info.value, BrokerError)


async def test_create_topics_sync_inside_running_loop(
    kafka_broker: KafkaBroker, unique_name: str
) -> None:
    topic = f"sync-{unique_name}"
    create_topics_sync(kafka_broker.bootstrap, {topic: 3})
    assert (await _counts(kafka_broker.bootstrap))[topic] == 3


def test_restart_on_same_data_dir_keeps_messages(tmp_path: Path, unique_name: str) -> None:
    data = tmp_path / "kafka"
    topic = f"keep-{unique_name}"
    sent = [(b"a", b"first"), (b"b", b"second"), (b"c", b"third")]
    with KafkaBroker(data_dir=data, heap="384m") as first:
        bootstrap = first.bootstrap
        create_topics_sync(bootstrap, {topic: 2})
        asyncio.run(_produce(bootstrap, topic, sent))
    assert not first.running
    assert (data / "kafka-logs" / "meta.properties").is_file()
    state = json.loads((data / "broker.json").read_text())
    assert state["port"] == int(bootstrap.rsplit(":", 1)[1])
    assert formatted_cluster_id(data) == state["cluster_id"]
    assert len(state["cluster_id"]) == 22

    with KafkaBroker(data_dir=data, heap="384m") as second:
        assert second.bootstrap == bootstrap  # ports persisted in the data dir
        got = asyncio.run(_consume(bootstrap, topic, f"g-{unique_name}", len(sent)))
        assert asyncio.run(_counts(bootstrap))[topic] == 2
    assert sorted(got) == sorted(sent)
    assert data.is_dir()  # a given data dir is kept


def test_broker_that_dies_while_starting_raises_with_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = KafkaBroker(data_dir=tmp_path / "kafka", port=port, heap="256m")
        with pytest.raises(BrokerError) as info:
            broker.start()
    message = str(info.value)
    assert "exited with code" in message
    assert str(port) in message  # the bind failure in its log names the port
    assert not broker.running


def test_missing_mvn_raises_broker_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(BrokerError, match=re.escape("'mvn' was not found on PATH")):
        ensure_kafka_jars(cache_dir=tmp_path / "cache")
    assert not any((tmp_path / "cache").glob("*/lib"))


def test_jar_cache_is_reused(kafka_broker: KafkaBroker) -> None:
    lib = ensure_kafka_jars()
    assert (lib / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()
    assert any(lib.glob("log4j-slf4j-impl-*.jar"))
    assert ensure_kafka_jars() == lib


async def test_create_topics_without_a_broker_raises_broker_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(BrokerError, match=f"127.0.0.1:{port}"):
        await create_topics(f"127.0.0.1:{port}", {"nobody-home": 1}, timeout=3)


async def test_create_topics_rejects_bad_names_and_counts() -> None:
    with pytest.raises(InputError, match="invalid Kafka topic name 'bad topic'"):
        await create_topics("127.0.0.1:1", {"bad topic": 1})
    with pytest.raises(InputError, match="partition count must be an int >= 1, got 0"):
        await create_topics("127.0.0.1:1", {"fine": 0})
