"""``gravitas monitor --once --json`` against a real worker on the real Kafka broker while
events flow: topic rates, the worker group's lag, a dead letter with its reason and a
running request with its progress; the monitor joins no consumer group and the worker
keeps answering."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from gravitas.schemas.events import Ping, Pong, Progress
from tests.fixtures.nodes import kafka_harness

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def _groups(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {g[0] for g in await admin.list_consumer_groups()}
    finally:
        await admin.close()


async def test_monitor_once_json_sees_rates_lag_deadletters_and_requests(
    kafka_broker, tmp_path: Path, unique_name: str
) -> None:  # type: ignore[no-untyped-def]
    bootstrap = kafka_broker.bootstrap
    async with kafka_harness(tmp_path, bootstrap, unique_name) as h:
        prefix = h.client.topology.prefix
        rid = f"req-{uuid.uuid4().hex[:8]}"
        await h.client.publish(Progress(request_id=rid, stage="retrieve", fraction=0.4))
        # a record no event type decodes: the worker dead-letters it with the reason
        await h.transport.publish("ops.ping", b"bad", b'{"type": "ops.ping", "nonsense": 1}')
        groups_before = await _groups(bootstrap)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITAS_")}
        env.update(
            GRAVITAS_TOPIC_PREFIX=prefix,
            GRAVITAS_FEDERATION_PREFIX=prefix,
            GRAVITAS_GROUP_ID=f"g-{unique_name}",
            GRAVITAS_DATA_DIR=str(tmp_path / "monitor"),
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gravitas.streams.cli", "monitor", "--once", "--json",
            "--window", "4", "--broker", f"kafka://{bootstrap}",
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

        stop = asyncio.Event()

        async def traffic() -> int:
            answered = 0
            while not stop.is_set():
                reply = await h.client.request(
                    Ping(request_id=f"p-{uuid.uuid4().hex[:8]}"), "ops.pong", timeout=20
                )
                answered += isinstance(reply, Pong)
                await asyncio.sleep(0.1)
            return answered

        pings = asyncio.create_task(traffic())
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        stop.set()
        assert proc.returncode == 0, err.decode()
        assert await pings > 5  # the worker kept answering while the monitor watched
        snap = orjson.loads(out.decode().strip().splitlines()[-1])
        topics = {t["name"]: t for t in snap["topics"]}
        assert topics["ops.ping"]["rate"] > 0 and topics["ops.pong"]["seen"] > 0, topics
        assert topics["ops.ping"]["physical"] == f"{prefix}ops.ping"
        # the worker's group is known with its lag on the topics it consumes
        assert f"g-{unique_name}" in snap["lag_by_group"], snap["lag_by_group"]
        assert topics["ops.ping"]["lag"] is not None and topics["ops.ping"]["lag"] >= 0
        dead = [d for d in snap["deadletters"] if d["source_topic"] == "ops.ping"]
        assert dead and dead[0]["error_class"] and dead[0]["reason"], snap["deadletters"]
        running = {r["request_id"]: r for r in snap["requests"]}
        assert running[rid]["stage"] == "retrieve" and running[rid]["fraction"] == 0.4
        assert any(e["topic"] == "ops.pong" for e in snap["recent"])
        # the monitor created no consumer group (it reads without membership)
        # (the worker's own webhook-delivery group, `<group>-webhooks`, may join later)
        worker_groups = {f"g-{unique_name}-webhooks"}
        new = {g for g in await _groups(bootstrap) - groups_before if unique_name in g}
        assert new - worker_groups == set(), new
