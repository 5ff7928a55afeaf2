"""One agent suite, run on memory:// (embedded) and on kafka:// (a real faust worker
process against the real Apache Kafka broker)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gravitas.schemas.codec import encode
from gravitas.schemas.events import Ping, Pong, Rejected
from gravitas.streams.broker import KafkaBroker
from tests.fixtures.nodes import Harness, kafka_harness, memory_harness


@pytest.fixture(params=["memory", "kafka"])
async def harness(
    request: pytest.FixtureRequest, tmp_path: Path, unique_name: str
) -> AsyncIterator[Harness]:
    if request.param == "memory":
        async with memory_harness(tmp_path) as h:
            yield h
    else:
        broker: KafkaBroker = request.getfixturevalue("kafka_broker")
        async with kafka_harness(tmp_path, broker.bootstrap, unique_name) as h:
            yield h


def _rid() -> str:
    return f"r-{uuid.uuid4().hex[:10]}"


async def test_valid_event_reaches_agent_and_output_topic(harness: Harness) -> None:
    rid = _rid()
    reply = await harness.client.request(Ping(request_id=rid, payload="hello"), "ops.pong", 30)
    assert isinstance(reply, Pong)
    assert reply.request_id == rid
    assert reply.payload == "hello"


async def test_malformed_events_are_dead_lettered_and_the_next_valid_one_is_processed(
    harness: Harness,
) -> None:
    garbage = b"\xff\xfe not json at all"
    wrong_schema = b'{"type": "ops.ping", "request_id": "", "payload": 5}'
    await harness.transport.publish("ops.ping", b"bad-1", garbage)
    await harness.transport.publish("ops.ping", b"bad-2", wrong_schema)
    rid = _rid()
    reply = await harness.client.request(Ping(request_id=rid), "ops.pong", 30)
    assert reply.request_id == rid  # type: ignore[attr-defined]

    dead = await harness.collect("deadletter", lambda evs: len(evs) >= 2, timeout=30)
    by_payload = {d.payload(): d for d in dead if isinstance(d, Rejected)}
    assert set(by_payload) >= {garbage, wrong_schema}
    undecodable = by_payload[garbage]
    assert undecodable.error_class == "EventDecodeError"
    assert "not valid JSON" in undecodable.reason
    assert undecodable.source_topic == "ops.ping"
    assert undecodable.source_key == "bad-1"
    assert undecodable.source_offset >= 0
    invalid = by_payload[wrong_schema]
    assert invalid.error_class == "EventValidationError"
    assert "request_id" in invalid.reason and "payload" in invalid.reason


async def test_agent_errors_are_dead_lettered_with_their_class(harness: Harness) -> None:
    bad = Ping(request_id=_rid(), fail="CorruptFileError")
    await harness.client.publish(bad)
    rid = _rid()
    await harness.client.request(Ping(request_id=rid), "ops.pong", 30)
    dead = await harness.collect(
        "deadletter",
        lambda evs: any(isinstance(e, Rejected) and e.source_key == bad.request_id for e in evs),
    )
    record = next(e for e in dead if isinstance(e, Rejected) and e.source_key == bad.request_id)
    assert record.error_class == "CorruptFileError"
    assert record.agent == "ping"
    assert record.attempts == 1
    assert record.payload() == encode(bad)


async def test_transient_errors_are_retried_then_dead_lettered(harness: Harness) -> None:
    bad = Ping(request_id=_rid(), fail="StorageError")
    await harness.client.publish(bad)
    dead = await harness.collect(
        "deadletter",
        lambda evs: any(isinstance(e, Rejected) and e.source_key == bad.request_id for e in evs),
    )
    record = next(e for e in dead if isinstance(e, Rejected) and e.source_key == bad.request_id)
    assert record.error_class == "StorageError"
    assert record.attempts == 3  # the default retry budget, then dead-letter


async def test_outputs_have_ids_derived_from_the_input(harness: Harness) -> None:
    ping = Ping(request_id=_rid())
    reply = await harness.client.request(ping, "ops.pong", 30)
    assert isinstance(reply, Pong)
    assert reply.ping_id == ping.event_id
    assert reply.event_id == uuid.uuid5(ping.event_id, "ping:0")
    assert harness.ledger().count("ping") >= 1
