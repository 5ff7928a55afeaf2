"""The pipeline as a watcher sees it: per-topic rates and lag, recent events, dead
letters with reasons, running requests with their progress.

A :class:`PipelineWatcher` reads every topic of the node's topology through the
transport (on Kafka: consumers assigned to the partitions with no group membership and
no commits, positioned at the end; ``deadletter`` and ``progress`` are read from a
bounded tail so past dead letters and running requests show at once). It never joins
the workers' consumer groups, so it never moves their offsets or triggers a rebalance.
On Kafka, the lag of every consumer group of the node (committed offset vs log end) is
read with the admin client under the watcher's own client id.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from gravitas.streams.monitor.federation import FederationWatcher, rows_json
from gravitas.streams.topology import Topology
from gravitas.streams.transports.base import RawRecord, Transport

__all__ = ["PipelineSnapshot", "PipelineWatcher", "TopicRow", "kafka_lag"]

RATE_WINDOW_S = 10.0
"""Rates are events per second over this many trailing seconds."""
TAIL_TOPICS = ("deadletter", "progress")
"""Topics read from the beginning (bounded by ``keep``): their history matters."""
DONE_STAGES = frozenset({"done", "failed", "rejected", "cancelled", "error"})


@dataclass
class TopicRow:
    """One topic of the pipeline."""

    name: str
    physical: str
    seen: int = 0
    """Events read since the watcher started (tail topics: including their history)."""
    rate: float = 0.0
    """Events per second over the last ``RATE_WINDOW_S`` seconds."""
    lag: int | None = None
    """Sum over the node's consumer groups of (log end - committed), None if unknown."""


@dataclass
class PipelineSnapshot:
    """Everything a monitor shows, JSON-ready."""

    node_id: str
    broker: str
    at: float
    topics: list[TopicRow] = field(default_factory=list)
    recent: list[dict[str, Any]] = field(default_factory=list)
    deadletters: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lag_by_group: dict[str, int] = field(default_factory=dict)
    federation: list[dict[str, Any]] = field(default_factory=list)
    """One row per node of the federation (:mod:`.federation`), when watched."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _value(rec: RawRecord) -> dict[str, Any]:
    try:
        value = orjson.loads(rec.value)
    except orjson.JSONDecodeError:
        return {"raw": rec.value[:200].decode("utf-8", errors="replace")}
    return value if isinstance(value, dict) else {"value": value}


def _summary(rec: RawRecord, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "topic": rec.topic,
        "offset": rec.offset,
        "partition": rec.partition,
        "timestamp_ms": rec.timestamp_ms,
        "type": str(value.get("type", "")),
        "key": (rec.key or b"").decode("utf-8", errors="replace")[:120],
        "node_id": str(value.get("node_id", "")),
    }


class PipelineWatcher:
    """Reads every topic of ``topology`` through ``transport`` and keeps what a monitor
    shows; ``lag`` (optional) returns per-(group, topic) lag on demand."""

    def __init__(
        self,
        topology: Topology,
        transport: Transport,
        node_id: str,
        broker: str,
        keep: int = 50,
        lag: Callable[[], Any] | None = None,
        federation: FederationWatcher | None = None,
    ) -> None:
        self.topology = topology
        self.transport = transport
        self.node_id = node_id
        self.broker = broker
        self.keep = keep
        self._lag = lag
        self.federation = federation
        self.heard_of: set[str] = set()
        """Node ids seen on the federation's (shared) topics."""
        self._shared = {t for t in topology.names if topology.spec(t).shared}
        self._rows = {t: TopicRow(t, topology.physical(t)) for t in topology.names}
        self._times: dict[str, deque[float]] = {t: deque() for t in topology.names}
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self.deadletters: deque[dict[str, Any]] = deque(maxlen=keep)
        self.requests: dict[str, dict[str, Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._ready: list[asyncio.Event] = []
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    async def start(self) -> None:
        """Open one reader per topic; returns once every reader is positioned."""
        for topic in self.topology.names:
            ready = asyncio.Event()
            self._ready.append(ready)
            self._tasks.append(asyncio.create_task(self._read(topic, ready)))
        await asyncio.gather(*(r.wait() for r in self._ready))
        if self.federation is not None:
            await self.federation.read()  # the baseline of the nodes' rates

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def __aenter__(self) -> PipelineWatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _read(self, topic: str, ready: asyncio.Event) -> None:
        try:
            async with self.transport.subscription(topic, topic in TAIL_TOPICS) as sub:
                ready.set()
                async for rec in sub:
                    self._record(topic, rec)
        finally:
            ready.set()

    def _record(self, topic: str, rec: RawRecord) -> None:
        now = time.monotonic()
        self._rows[topic].seen += 1
        self._times[topic].append(now)
        value = _value(rec)
        summary = _summary(rec, value)
        summary["topic"] = topic
        self.recent.append(summary)
        if topic in self._shared and summary["node_id"] and len(self.heard_of) < 1000:
            self.heard_of.add(summary["node_id"][:64])
        if topic == "deadletter":
            self.deadletters.append(
                {
                    **summary,
                    "source_topic": str(value.get("source_topic", "")),
                    "error_class": str(value.get("error_class", "")),
                    "reason": str(value.get("reason", ""))[:300],
                    "agent": str(value.get("agent", "")),
                }
            )
        elif topic == "progress" and value.get("request_id"):
            rid = str(value["request_id"])
            stage = str(value.get("stage", ""))
            if stage in DONE_STAGES:
                self.requests.pop(rid, None)
            else:
                self.requests[rid] = {
                    "request_id": rid,
                    "stage": stage,
                    "fraction": float(value.get("fraction", 0.0) or 0.0),
                    "message": str(value.get("message", ""))[:200],
                    "timestamp_ms": rec.timestamp_ms,
                }
                while len(self.requests) > self.keep:
                    self.requests.pop(next(iter(self.requests)))
        for listener in list(self.listeners):
            listener(summary)

    async def snapshot(self) -> PipelineSnapshot:
        """The pipeline now (rates over the trailing window; lag read now on Kafka)."""
        now = time.monotonic()
        for topic, times in self._times.items():
            while times and times[0] < now - RATE_WINDOW_S:
                times.popleft()
            self._rows[topic].rate = round(len(times) / RATE_WINDOW_S, 3)
        by_group: dict[str, int] = {}
        if self._lag is not None:
            per = await self._lag()
            for row in self._rows.values():
                row.lag = None
            for (group, physical), lag in per.items():
                by_group[group] = by_group.get(group, 0) + lag
                for row in self._rows.values():
                    if row.physical == physical:
                        row.lag = (row.lag or 0) + lag
        fed: list[dict[str, Any]] = []
        if self.federation is not None:
            fed = rows_json(await self.federation.read(self.heard_of))
        return PipelineSnapshot(
            node_id=self.node_id,
            broker=self.broker,
            at=time.time(),
            topics=[TopicRow(**asdict(r)) for r in self._rows.values()],
            recent=list(self.recent)[::-1],
            deadletters=list(self.deadletters)[::-1],
            requests=sorted(self.requests.values(), key=lambda r: -int(r["timestamp_ms"])),
            lag_by_group=by_group,
            federation=fed,
        )


async def kafka_lag(
    bootstrap: str, group_prefix: str, physical_topics: set[str]
) -> dict[tuple[str, str], int]:
    """``{(group, physical topic): lag}`` of the consumer groups whose id starts with
    ``group_prefix`` on the node's topics: log end offset minus committed offset, summed
    over partitions. Read-only admin calls; the watcher joins no group."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="gravitas-monitor")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, client_id="gravitas-monitor")
    out: dict[tuple[str, str], int] = {}
    await admin.start()
    await consumer.start()
    try:
        groups = [g[0] for g in await admin.list_consumer_groups()]
        for group in sorted(g for g in groups if g.startswith(group_prefix)):
            committed = await admin.list_consumer_group_offsets(group)
            tps = [tp for tp in committed if tp.topic in physical_topics]
            if not tps:
                continue
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                meta = committed[tp]
                if meta.offset < 0:
                    continue
                key = (group, tp.topic)
                out[key] = out.get(key, 0) + max(0, ends[tp] - meta.offset)
    finally:
        await consumer.stop()
        await admin.close()
    return out
