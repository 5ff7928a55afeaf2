"""Kafka worker throughput: one and two `gravitas node` workers vs raw aiokafka.

In one run a real Apache Kafka broker (from Maven Central jars) is started, and for each
measurement N pings (ledger effect off: the ping agent is a pass-through) are
pre-produced onto a fresh ``ops.ping`` topic (P partitions), then consumed by:

- **raw aiokafka**: one plain ``AIOKafkaConsumer`` in a consumer group, ``getmany``
  batches, an offset commit per batch, no decoding, nothing produced (the baseline);
- **1 worker**: one ``gravitas node`` worker process running the ping agent (decode,
  validate, answer with a ``Pong`` on ``ops.pong``, commit only once delivered);
- **2 workers**: two such processes in one consumer group, sharing the partitions.

A worker's rate is the committed-offset rate of its group: the bench polls the group's
committed offsets and times from the first commit it sees to all N committed,
``(N - first committed) / (t_all - t_first)``, so start-up and group join are outside
the figure. It also reads the worker processes' CPU time (``/proc``) over that window:
events per CPU-second does not depend on how busy the shared machine is. Every run
checks that ``ops.pong`` holds at least N pongs (nothing lost). The in-node webhook
delivery consumer (a separate consumer group over every topic) is off unless
``--webhook-delivery``.

    python bench/events.py [--events 300000] [--partitions 8]

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
from collections.abc import Sequence
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from gravitas.schemas.codec import encode
from gravitas.schemas.events import Ping
from gravitas.streams.broker import KafkaBroker, create_topics
from gravitas.streams.topology import Topology

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


async def preproduce(bootstrap: str, topic: str, n: int) -> float:
    """Publish N distinct pings onto ``topic``; returns the produce rate."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, acks=1, max_batch_size=1 << 20
    )
    await producer.start()
    t0 = time.perf_counter()
    try:
        futures = []
        for i in range(n):
            ping = Ping(request_id=f"b{i}", effect=False)
            futures.append(await producer.send(topic, encode(ping), key=ping.key().encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return n / (time.perf_counter() - t0)


async def raw_consume(bootstrap: str, topic: str, n: int) -> float:
    """Messages/s of a plain aiokafka group consumer (getmany, commit per batch)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=2000,
    )
    await consumer.start()
    seen = 0
    started: float | None = None
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            if batch and started is None:
                started = time.perf_counter()
            seen += sum(len(v) for v in batch.values())
            if batch:
                await consumer.commit()
        assert started is not None
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def committed_total(admin: AIOKafkaAdminClient, group: str, topic: str) -> int:
    offsets = await admin.list_consumer_group_offsets(group)
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


async def end_offsets_total(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        await consumer.stop()


async def worker_run(
    bootstrap: str, n: int, workers: int, partitions: int, batch: int, tmp: Path, webhooks: bool
) -> dict[str, float]:
    """Pre-produce N pings, start ``workers`` node processes, time the committed offsets."""
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    group = f"{prefix}group"
    topology = Topology(prefix=prefix, partitions=partitions)
    await create_topics(bootstrap, topology.partition_counts(), timeout=300)
    ping_topic = topology.physical("ops.ping")
    produce_rate = await preproduce(bootstrap, ping_topic, n)
    base = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITAS_")}
    base.update(
        GRAVITAS_BROKER=f"kafka://{bootstrap}",
        GRAVITAS_TOPIC_PREFIX=prefix,
        GRAVITAS_PARTITIONS=str(partitions),
        GRAVITAS_GROUP_ID=group,
        GRAVITAS_HTTP_PORT="0",
        GRAVITAS_AGENTS='["ping"]',
        GRAVITAS_KAFKA_SESSION_TIMEOUT_S="6",
        GRAVITAS_KAFKA_BATCH_SIZE=str(batch),
        GRAVITAS_LOG_LEVEL="WARNING",
        GRAVITAS_WEBHOOK_DELIVERY="true" if webhooks else "false",
    )
    procs: list[subprocess.Popen[bytes]] = []
    for w in range(workers):
        env = dict(base, GRAVITAS_NODE_ID=f"w{w}", GRAVITAS_DATA_DIR=str(tmp / f"{prefix}w{w}"))
        log = (tmp / f"{prefix}w{w}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "gravitas.streams.cli", "node"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        first: tuple[float, int, float] | None = None
        deadline = time.monotonic() + max(300.0, n / 500)
        while True:
            done = await committed_total(admin, group, ping_topic)
            now = time.perf_counter()
            if first is None and done > 0:
                first = (now, done, sum(cpu_seconds(p.pid) for p in procs))
            if done >= n:
                break
            for p in procs:
                if p.poll() is not None:
                    raise RuntimeError(f"worker exited with {p.returncode}; see {tmp}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {done} of {n} committed")
            await asyncio.sleep(0.05)
        assert first is not None
        cpu = sum(cpu_seconds(p.pid) for p in procs) - first[2]
        events = n - first[1]
        seconds = now - first[0]
    finally:
        await admin.close()
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
    pongs = await end_offsets_total(bootstrap, topology.physical("ops.pong"), partitions)
    if pongs < n:
        raise AssertionError(f"{pongs} pongs for {n} pings: events were lost")
    return {
        "events_per_s": events / seconds,
        "events_per_cpu_s": events / cpu if cpu > 0 else float("nan"),
        "window_s": seconds,
        "produce_per_s": produce_rate,
        "pongs": pongs,
    }


async def raw_run(bootstrap: str, n: int, partitions: int) -> float:
    topic = f"raw-{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, {topic: partitions}, timeout=300)
    await preproduce(bootstrap, topic, n)
    return await raw_consume(bootstrap, topic, n)


def table(rows: Sequence[tuple[str, float, float | None, float | None]]) -> None:
    print(f"{'path':<34}{'events/s':>12}{'x raw':>8}{'per CPU-s':>12}")
    for label, rate, ratio, per_cpu in rows:
        r = f"{ratio:>8.3f}" if ratio is not None else f"{'':>8}"
        c = f"{per_cpu:>12,.0f}" if per_cpu is not None else ""
        print(f"{label:<34}{rate:>12,.0f}{r}{c}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--batch", type=int, default=2000, help="GRAVITAS_KAFKA_BATCH_SIZE")
    parser.add_argument(
        "--webhook-delivery",
        action="store_true",
        help="keep the in-node webhook delivery consumer on (it reads every topic)",
    )
    args = parser.parse_args()
    n = args.events
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp, KafkaBroker(heap="1g") as broker:
        raw = await raw_run(broker.bootstrap, n, args.partitions)
        run = (broker.bootstrap, n)
        opts = (args.partitions, args.batch, Path(tmp), args.webhook_delivery)
        one = await worker_run(*run, 1, *opts)
        two = await worker_run(*run, 2, *opts)
    load_after = load_average()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores (shared), Python "
        f"{platform.python_version()}; load average before {load_before}, after {load_after}"
    )
    print(
        f"{n:,} pre-produced pings, {args.partitions} partitions, batch {args.batch}, "
        f"webhook delivery {'on' if args.webhook_delivery else 'off'}"
    )
    table(
        [
            ("raw aiokafka consume", raw, 1.0, None),
            (
                "ping agent, 1 worker",
                one["events_per_s"],
                one["events_per_s"] / raw,
                one["events_per_cpu_s"],
            ),
            (
                "ping agent, 2 workers",
                two["events_per_s"],
                two["events_per_s"] / raw,
                two["events_per_cpu_s"],
            ),
        ]
    )
    scale = two["events_per_s"] / one["events_per_s"]
    print(f"2 workers / 1 worker: {scale:.2f}x (goal >= 1.7); 1 worker goal >= 30,000/s")
    figures = {
        "events": n,
        "partitions": args.partitions,
        "batch": args.batch,
        "webhook_delivery": args.webhook_delivery,
        "raw_aiokafka_consume_per_s": round(raw),
        "one_worker_per_s": round(one["events_per_s"]),
        "one_worker_per_cpu_s": round(one["events_per_cpu_s"]),
        "two_workers_per_s": round(two["events_per_s"]),
        "two_workers_per_cpu_s": round(two["events_per_cpu_s"]),
        "one_vs_raw": round(one["events_per_s"] / raw, 3),
        "two_vs_raw": round(two["events_per_s"] / raw, 3),
        "two_vs_one": round(scale, 3),
        "load_before": load_before,
        "load_after": load_after,
    }
    print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    asyncio.run(main())
