"""Event throughput and latency of a pass-through agent on both transports.

In one run: a real Apache Kafka broker (from Maven Central jars) is started; a raw
aiokafka produce/consume baseline is measured on it; then the ping agent (pass-through,
ledger effect off) runs (a) in-process on memory:// and (b) as one `gravitas node` faust
worker process on kafka://. Throughput: N pings pre-published, time until the N-th pong.
Latency: pings paced at a fixed rate, publish -> pong seen by the client, p50/p99.

    python bench/events.py [--events 50000]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from gravitas.schemas.codec import decode, encode
from gravitas.schemas.events import Ping, Pong
from gravitas.schemas.settings import load_settings
from gravitas.streams.broker import KafkaBroker, create_topics
from gravitas.streams.node import EmbeddedNode
from gravitas.streams.topology import Topology
from gravitas.streams.transports.base import Transport
from gravitas.streams.transports.kafka import KafkaTransport


async def raw_aiokafka(bootstrap: str, n: int) -> tuple[float, float]:
    """Messages/s produced (batched sends) and consumed by plain aiokafka."""
    topic = f"raw-{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, {topic: 4})
    value = encode(Ping(request_id="raw", effect=False))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
    await producer.start()
    t0 = time.perf_counter()
    futures = [await producer.send(topic, value, key=str(i).encode()) for i in range(n)]
    await asyncio.gather(*futures)
    produce_s = time.perf_counter() - t0
    await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    seen = 0
    t0 = time.perf_counter()
    while seen < n:
        batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
        seen += sum(len(v) for v in batch.values())
    consume_s = time.perf_counter() - t0
    await consumer.stop()
    return n / produce_s, n / consume_s


async def through_agent(
    transport: Transport, publish_many: object, n: int, rate: float, latency_n: int
) -> tuple[float, float, float]:
    """(events/s through the agent, p50 ms, p99 ms)."""
    pings = [Ping(request_id=f"b{i}", effect=False) for i in range(n)]
    async with transport.subscription("ops.pong") as sub:
        t0 = time.perf_counter()
        await publish_many(pings)  # type: ignore[operator]
        got = 0
        async for _ in sub:
            got += 1
            if got == n:
                break
        throughput = n / (time.perf_counter() - t0)

        latencies: list[float] = []
        it = sub.__aiter__()

        async def receive() -> None:
            while len(latencies) < latency_n:
                rec = await it.__anext__()
                pong = decode(rec.value, [Pong])
                assert isinstance(pong, Pong)
                latencies.append((time.time_ns() - pong.sent_at_ns) / 1e6)

        receiver = asyncio.create_task(receive())
        for i in range(latency_n):
            await publish_many([Ping(request_id=f"l{i}", effect=False, sent_at_ns=time.time_ns())])  # type: ignore[operator]
            await asyncio.sleep(1 / rate)
        await asyncio.wait_for(receiver, 60)
    arr = np.array(latencies)
    return throughput, float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


async def memory_run(n: int, latency_n: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp), http_port=0, broker="memory://")
        async with EmbeddedNode(settings, serve_http=False) as node:
            transport = node.transport

            async def publish_many(pings: list[Ping]) -> None:
                for p in pings:
                    await transport.publish("ops.ping", p.key().encode(), encode(p))

            return await through_agent(transport, publish_many, n, 1000, latency_n)


async def kafka_run(
    bootstrap: str, n: int, latency_n: int, tmp: Path
) -> tuple[float, float, float]:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    topology = Topology(prefix=prefix, partitions=4)
    await create_topics(bootstrap, topology.partition_counts())
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITAS_")}
    env.update(
        GRAVITAS_BROKER=f"kafka://{bootstrap}",
        GRAVITAS_TOPIC_PREFIX=prefix,
        GRAVITAS_DATA_DIR=str(tmp / "node"),
        GRAVITAS_HTTP_PORT="0",
        GRAVITAS_AGENTS='["ping"]',
        GRAVITAS_KAFKA_SESSION_TIMEOUT_S="6",
        GRAVITAS_KAFKA_BATCH_SIZE="2000",
    )
    log = (tmp / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "gravitas.streams.cli", "node"], env=env, stdout=log, stderr=log
    )
    transport = KafkaTransport(f"kafka://{bootstrap}", topology)
    try:
        # Wait until the worker answers (it has joined the group and owns the partitions).
        async with transport.subscription("ops.pong") as sub:
            await transport.publish("ops.ping", b"w", encode(Ping(request_id="warm", effect=False)))
            async for _ in sub:
                break

        async def publish_many(pings: list[Ping]) -> None:
            await transport.publish_many([("ops.ping", p.key().encode(), encode(p)) for p in pings])

        return await through_agent(transport, publish_many, n, 500, latency_n)
    finally:
        await transport.close()
        worker.terminate()
        worker.wait(30)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--latency-events", type=int, default=1000)
    args = parser.parse_args()
    n = args.events
    with tempfile.TemporaryDirectory() as tmp, KafkaBroker(heap="1g") as broker:
        raw_produce, raw_consume = await raw_aiokafka(broker.bootstrap, n)
        mem = await memory_run(n, args.latency_events)
        kafka = await kafka_run(broker.bootstrap, n, args.latency_events, Path(tmp))
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"{'path':<34}{'events/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'raw aiokafka produce':<34}{raw_produce:>12,.0f}")
    print(f"{'raw aiokafka consume':<34}{raw_consume:>12,.0f}")
    for label, (rate, p50, p99) in (
        ("ping agent, memory://", mem),
        ("ping agent, kafka:// (1 worker)", kafka),
    ):
        print(f"{label:<34}{rate:>12,.0f}{p50:>10.2f}{p99:>10.2f}")
    figures = {
        "events": n,
        "raw_aiokafka_per_s": round(min(raw_produce, raw_consume)),
        "raw_aiokafka_produce_per_s": round(raw_produce),
        "raw_aiokafka_consume_per_s": round(raw_consume),
        "memory_events_per_s": round(mem[0]),
        "memory_p50_ms": round(mem[1], 3),
        "memory_p99_ms": round(mem[2], 3),
        "kafka_events_per_s": round(kafka[0]),
        "kafka_p50_ms": round(kafka[1], 3),
        "kafka_p99_ms": round(kafka[2], 3),
        "kafka_vs_raw": round(kafka[0] / min(raw_produce, raw_consume), 3),
    }
    print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    asyncio.run(main())
