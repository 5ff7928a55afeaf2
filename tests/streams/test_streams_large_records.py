"""Big answers and big records on the real Kafka broker: a result over the broker's
message limit travels by reference and the SDK fetches it; a record just under the limit
that is rejected gets a truncated dead-letter record; an output the broker refuses
becomes a dead letter and a failed answer, never a crash."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gravitas.agents.discovery import DiscoveryAgent
from gravitas.agents.results import ResultReferenceError, by_reference, fetch_referenced
from gravitas.agents.services import NodeServices
from gravitas.schemas.codec import encode
from gravitas.schemas.events import (
    OverviewsUpdated,
    PixelMatch,
    Rejected,
    SearchResult,
)
from gravitas.schemas.settings import load_settings
from gravitas.streams.broker import KafkaBroker, create_topics
from gravitas.streams.metrics import NodeMetrics
from gravitas.streams.processing import Processor, outbound
from gravitas.streams.runners.kafka import KafkaRunner, build_app
from gravitas.streams.topology import Topology
from gravitas.streams.transports.kafka import KafkaTransport
from tests.agents.test_agents_pixels import search_event, stageiv_event
from tests.fixtures.nodes import kafka_harness

BROKER_LIMIT = 1_048_588  # Kafka's default message.max.bytes
JUST_UNDER = 1_000_000


def _big_result(n: int, rid: str = "big-1") -> SearchResult:
    t = datetime(2020, 1, 1, tzinfo=UTC)
    matches = [PixelMatch(lon=i * 1e-4, lat=-i * 1e-4, time=t, value=float(i)) for i in range(n)]
    return SearchResult(request_id=rid, matches=matches, total_matches=n, served_by="t")


@pytest.mark.kafka
async def test_large_result_by_reference_and_large_record_dead_lettered(
    tmp_path: Path, kafka_broker: KafkaBroker, unique_name: str
) -> None:
    async with kafka_harness(tmp_path, kafka_broker.bootstrap, unique_name) as h:
        # a rejected record just under the broker's limit: its dead letter still fits
        bad = b'{"type": "discovery.pixel_search", "junk": "' + b"x" * (JUST_UNDER - 60) + b'"}'
        assert BROKER_LIMIT - 50_000 < len(bad) < BROKER_LIMIT
        await h.transport.publish("requests.discovery", b"huge", bad)

        await h.client.publish(stageiv_event())
        dead = await h.collect(
            "deadletter", lambda evs: any(isinstance(e, Rejected) for e in evs), timeout=120
        )
        (rec,) = [e for e in dead if isinstance(e, Rejected) and e.source_key == "huge"]
        assert rec.payload_truncated and rec.payload_size == len(bad)
        assert bad.startswith(rec.payload()) and len(rec.payload()) < len(bad)
        assert rec.error_class == "EventValidationError" and rec.reason

        await h.collect(
            "overviews.updated",
            lambda evs: len({e.timestamp for e in evs if isinstance(e, OverviewsUpdated)}) >= 23,
            timeout=180,
        )
        search = search_event(0.0).model_copy(update={"limit": 30_000})
        reply = await h.client.request(search, timeout=120)  # the SDK fetches the reference
        assert isinstance(reply, SearchResult) and reply.status == "ok", reply.error
        assert len(reply.matches) == 30_000 and reply.truncated
        assert len(encode(reply)) > BROKER_LIMIT  # could never have travelled inline
        on_topic = await h.collect(
            "discovery.results",
            lambda evs: any(getattr(e, "request_id", "") == search.request_id for e in evs),
        )
        (sent,) = [e for e in on_topic if getattr(e, "request_id", "") == search.request_id]
        assert isinstance(sent, SearchResult)
        assert sent.matches == [] and sent.result_ref == f"results/{search.request_id}.json"
        assert sent.result_bytes == len(encode(reply))
        assert h.workers[0].proc is not None and h.workers[0].proc.poll() is None
        await h.wait_ready(30)  # and the worker still answers


def test_references_are_checked_before_use(tmp_path: Path) -> None:
    services = NodeServices(load_settings(data_dir=tmp_path / "node"))
    try:
        small = _big_result(3)
        assert by_reference(services, small, 1024) is small  # fits: stays inline
        big = by_reference(services, _big_result(5000), 64 * 1024)
        assert big.matches == [] and big.result_ref == "results/big-1.json"
        whole = fetch_referenced(services.object_store, big)
        assert len(whole.matches) == 5000 and whole.total_matches == 5000
        store = services.object_store
        before = sorted(store.list(""))
        hostile = {
            "../../etc/passwd": "outside 'results/'",
            "assets/x.json": "outside 'results/'",
        }
        for ref, message in hostile.items():
            with pytest.raises(ResultReferenceError, match=message) as err:
                fetch_referenced(store, big.model_copy(update={"result_ref": ref}))
            assert ref in str(err.value)
        with pytest.raises(ResultReferenceError, match="SHA-256"):
            fetch_referenced(store, big.model_copy(update={"result_sha256": "0" * 64}))
        other = by_reference(services, _big_result(5000, "big-2"), 64 * 1024)
        with pytest.raises(ResultReferenceError, match="answers 'big-2'"):
            swapped = {"result_ref": other.result_ref, "result_sha256": other.result_sha256}
            fetch_referenced(store, big.model_copy(update=swapped))
        assert sorted(store.list("")) == sorted([*before, "results/big-2.json"])
    finally:
        services.close()


@pytest.mark.kafka
async def test_an_output_the_broker_refuses_is_dead_lettered_and_answered(
    tmp_path: Path, kafka_broker: KafkaBroker
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    topology = Topology(prefix=prefix, partitions=1, federation_prefix=prefix)
    await create_topics(kafka_broker.bootstrap, topology.partition_counts())
    settings = load_settings(
        broker=f"kafka://{kafka_broker.bootstrap}",
        data_dir=tmp_path / "n",
        topic_prefix=prefix,
        federation_prefix=prefix,
    )
    services = NodeServices(settings)
    metrics = NodeMetrics()
    runner = KafkaRunner(build_app(settings), settings, topology, [], services, metrics)
    processor = Processor(DiscoveryAgent(), topology, services, metrics, runner.publish,
                          node_id="n1")  # fmt: skip
    transport = KafkaTransport(settings.broker, topology)
    try:
        huge = outbound(topology, "discovery.results", _big_result(20_000, "refused-1"))
        assert len(huge.value) > BROKER_LIMIT
        producer = await runner._get_producer()
        fut = await runner._send_or_deadletter(producer, processor, huge)  # no exception
        await asyncio.wait_for(fut, 30)
        answers: list[SearchResult] = []
        async with transport.subscription("discovery.results", from_beginning=True) as sub:
            async for raw in sub:
                answers.append(SearchResult.model_validate_json(raw.value))
                break
        (answer,) = answers
        assert answer.request_id == "refused-1" and answer.status == "failed"
        assert answer.error is not None and "was not sent" in answer.error
        async with transport.subscription("deadletter", from_beginning=True) as sub:
            async for raw in sub:
                dead = Rejected.model_validate_json(raw.value)
                break
        assert dead.source_topic == "discovery.results" and dead.payload_truncated
        assert dead.payload_size == len(huge.value) and "MessageSizeTooLarge" in dead.error_class
    finally:
        await runner.close()
        await transport.close()
        services.close()


def test_dead_letter_records_are_bounded_and_keep_the_reason() -> None:
    payload = bytes(range(256)) * 4000  # ~1 MB, not UTF-8
    reason = "bad value " + "z" * 20_000
    rec = Rejected.for_payload(payload, source_topic="t", error_class="E", reason=reason)
    assert rec.payload_truncated and rec.payload_size == len(payload)
    assert payload.startswith(rec.payload()) and len(rec.payload()) == 64 * 1024
    assert rec.reason.startswith("bad value zzz") and rec.reason.endswith("(truncated)")
    assert len(encode(rec)) < 100_000  # far below the broker's limit
    small = Rejected.for_payload(b"{}", source_topic="t", error_class="E", reason="short")
    assert not small.payload_truncated and small.payload() == b"{}" and small.reason == "short"
