"""A bounded soak on loopback: a real ``gravitas node`` worker on the real Kafka broker
gets a fixed rate of mixed requests for two minutes (pixel searches on real Stage IV,
datacube requests, lazy Landsat scenes registered and then searched, which parks the
searches on onboarding). Every request must be answered, the consumer lag must stay
bounded. The figures go to docs/reliability.md "## Soak"."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from gravitas.schemas.codec import decode
from gravitas.schemas.common import TimeRange
from gravitas.schemas.errors import GravitasError
from gravitas.schemas.events import (
    DatacubeRequested,
    Modality,
    OverviewsUpdated,
    PixelSearch,
    Predicate,
    SceneAnnounced,
)
from gravitas.storage.sampledata import fetch
from gravitas.streams.broker import KafkaBroker
from gravitas.streams.registry import default_agents
from tests.agents.test_agents_pixels import WINDOW, search_event, stageiv_event
from tests.fixtures.nodes import Harness, kafka_harness

RATE_PER_S = 2.0
DURATION_S = 120.0
SETTLE_S = 30.0
MAX_LAG = 60
"""Records not yet processed by the worker, at any sample: 30 s of requests at the rate
would be 60 plus their follow-up events; a worker that keeps up stays far below."""
LAZY_DELAY_TICKS = 6
"""A lazy scene is searched this many ticks after it was registered."""


def _band3() -> Path:
    scene = sorted(p for p in fetch("landsat7_series").iterdir() if p.name.startswith("LE7"))[0]
    return next(scene.glob("*_b3.tif"))


def _landsat_when() -> datetime:
    name = _band3().parent.name
    year, doy = int(name[9:13]), int(name[13:16])
    return datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=doy - 1)


def _landsat_bbox() -> tuple[float, float, float, float]:
    from gravitas.storage.catalog.items import item_from_file

    w, s, e, n = item_from_file(_band3(), "p", "p", checksum=False).bbox[:4]  # type: ignore[index]
    return (w, s, e, n)


def _datacube(rid: str) -> DatacubeRequested:
    return DatacubeRequested(
        request_id=rid,
        modalities=[Modality(name="rain", collection="stageiv", layers=["stageiv"])],
        bbox=(-79.0, 33.5, -77.0, 35.5),
        time=WINDOW,
        level=14,
        time_step_s=6 * 3600,
        patch_size=16,
    )


def _schedule() -> Iterator[str]:
    """What each tick sends: searches, datacubes, lazy scenes and searches of them."""
    cycle = ["search", "datacube", "scene", "search", "lazy-search", "search", "datacube",
             "search", "scene", "lazy-search"]  # fmt: skip
    while True:
        yield from cycle


async def _lag(bootstrap: str, group: str, parts: list[TopicPartition]) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        ends = await consumer.end_offsets(parts)
        total = 0
        for tp, end in ends.items():
            meta = committed.get(tp)
            total += end - (meta.offset if meta is not None and meta.offset >= 0 else 0)
        return total
    finally:
        await consumer.stop()
        await admin.close()


class _Answers:
    """Every answer on the reply topics, with the time it arrived."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.at: dict[str, float] = {}
        self.status: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self._ready: list[asyncio.Event] = []

    async def listen(self, topic: str, ready: asyncio.Event) -> None:
        types = self.h.client.topology.events(topic)
        async with self.h.transport.subscription(topic) as sub:
            ready.set()
            async for rec in sub:
                try:
                    ev = decode(rec.value, types)
                except GravitasError:
                    continue
                rid = str(getattr(ev, "request_id", ""))
                self.at.setdefault(rid, time.monotonic())
                self.status[rid] = str(getattr(ev, "status", ""))
                if getattr(ev, "error", None):
                    self.errors[rid] = str(ev.error)  # type: ignore[attr-defined]


@pytest.mark.kafka
@pytest.mark.soak
async def test_soak_mixed_requests_two_minutes(
    tmp_path: Path, kafka_broker: KafkaBroker, unique_name: str
) -> None:
    roots = [str(fetch("landsat7_series")), str(fetch("stageiv_nc").parent)]
    env = {"GRAVITAS_ALLOWED_ROOTS": orjson.dumps(roots).decode()}
    async with kafka_harness(tmp_path, kafka_broker.bootstrap, unique_name, extra_env=env) as h:
        await h.client.publish(stageiv_event())
        await h.collect(
            "overviews.updated",
            lambda evs: len({e.timestamp for e in evs if isinstance(e, OverviewsUpdated)}) >= 23,
            timeout=180,
        )
        answers = _Answers(h)
        listeners = []
        for topic in ("discovery.results", "datacubes.ready"):
            ready = asyncio.Event()
            listeners.append(asyncio.create_task(answers.listen(topic, ready)))
            await asyncio.wait_for(ready.wait(), 30)
        await asyncio.sleep(1.0)  # the subscriptions are positioned at the end

        group = f"g-{unique_name}"
        topology = h.client.topology
        sources = [
            TopicPartition(topology.physical(a.topic), p)
            for a in default_agents()
            for p in range(topology.partitions(a.topic))
        ]
        sent: dict[str, tuple[str, float]] = {}
        lags: list[int] = []
        stop = asyncio.Event()

        async def sample_lag() -> None:
            while not stop.is_set():
                try:
                    lags.append(await _lag(kafka_broker.bootstrap, group, sources))
                except Exception as exc:  # a sample may fail during a rebalance
                    print(f"lag sample failed: {exc!r}")
                await asyncio.sleep(2.0)

        sampler = asyncio.create_task(sample_lag())
        registered: list[tuple[int, str]] = []
        scenes: list[str] = []
        start = time.monotonic()
        schedule = _schedule()
        tick = 0
        while (at := start + tick / RATE_PER_S) < start + DURATION_S:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            kind = next(schedule)
            rid = f"soak-{tick}-{uuid.uuid4().hex[:6]}"
            event: Any
            if kind == "search":
                event = search_event(30.0 + (tick % 5) * 10).model_copy(update={"request_id": rid})
            elif kind == "datacube":
                event = _datacube(rid)
            elif kind == "scene":
                layer = f"soak{tick}"
                await h.client.publish(
                    SceneAnnounced(
                        scene_id=f"soak-{tick}",
                        collection="soak-landsat",
                        hrefs=[str(_band3())],
                        layer=layer,
                        mode="lazy",
                        bbox=_landsat_bbox(),
                        datetime=_landsat_when(),
                    )
                )
                registered.append((tick, layer))
                scenes.append(layer)
                tick += 1
                continue
            else:
                ready_layers = [lay for t, lay in registered if tick - t >= LAZY_DELAY_TICKS]
                if not ready_layers:
                    event = search_event().model_copy(update={"request_id": rid})
                    kind = "search"
                else:
                    layer = ready_layers.pop(0)
                    registered = [(t, lay) for t, lay in registered if lay != layer]
                    event = PixelSearch(
                        request_id=rid, layer=f"{layer}", predicate=Predicate(op=">", value=0),
                        bbox=_landsat_bbox(),
                        time=TimeRange(start=_landsat_when(),
                                       end=_landsat_when() + timedelta(days=1)),
                    )  # fmt: skip
            sent[rid] = (kind, time.monotonic())
            await h.client.publish(event)
            tick += 1
        sent_s = time.monotonic() - start
        deadline = time.monotonic() + SETTLE_S
        while set(sent) - set(answers.at) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        stop.set()
        await sampler
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)

        unanswered = sorted(set(sent) - set(answers.at))

        def quantiles(kind: str | None) -> dict[str, float]:
            got = sorted(
                answers.at[r] - t
                for r, (k, t) in sent.items()
                if r in answers.at and kind in (None, k)
            )
            if not got:
                return {}
            return {
                "p50_s": round(got[len(got) // 2], 3),
                "p99_s": round(got[min(len(got) - 1, int(len(got) * 0.99))], 3),
            }

        kinds = {k for k, _ in sent.values()}
        failed = {r: answers.errors.get(r, "") for r in sent if answers.status.get(r) == "failed"}
        figures = {
            "rate_per_s": RATE_PER_S,
            "duration_s": round(sent_s, 1),
            "requests": len(sent),
            "scenes_registered": len(scenes),
            "by_kind": {k: sum(1 for v, _ in sent.values() if v == k) for k in sorted(kinds)},
            "answered": len(sent) - len(unanswered),
            "failed": len(failed),
            "max_lag": max(lags) if lags else None,
            "lag_samples": len(lags),
            **quantiles(None),
            "by_kind_latency": {k: quantiles(k) for k in sorted(kinds)},
        }
        print("SOAK " + orjson.dumps(figures).decode())
        assert not unanswered, (unanswered[:10], h.workers[0].output())
        assert not failed, failed
        assert {"search", "datacube", "lazy-search"} <= kinds
        assert lags and max(lags) <= MAX_LAG, lags
        assert h.workers[0].proc is not None and h.workers[0].proc.poll() is None
