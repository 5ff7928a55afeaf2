"""Featurize requests on real Stage IV rain (Hurricane Florence): reducers per time step
equal numpy on the stored grid, a user expression agrees with the pixel search, bad
requests are answered as failed naming the cause; embedded and through a Kafka worker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from gravitas.agents.discovery import DiscoveryAgent
from gravitas.agents.ingest import IngestAgent
from gravitas.agents.overviews import OverviewAgent
from gravitas.schemas.common import TimeRange
from gravitas.schemas.events import FeatureResult, Featurize, OverviewsUpdated
from gravitas.schemas.settings import load_settings
from gravitas.storage.pixels.read import read_layer
from gravitas.storage.pixels.search import search_pixels
from gravitas.streams.broker import KafkaBroker
from gravitas.streams.node import EmbeddedNode
from tests.agents.test_agents_pixels import FLORENCE, WINDOW, stageiv_event
from tests.fixtures.nodes import kafka_harness


def _rid() -> str:
    return f"f-{uuid.uuid4().hex[:10]}"


def featurize(expression: str, reducers: list[str], **more: object) -> Featurize:
    fields: dict[str, object] = dict(
        request_id=_rid(),
        layers={"rain": "stageiv"},
        expression=expression,
        reducers=reducers,
        bbox=FLORENCE,
        time=WINDOW,
    )
    fields.update(more)
    return Featurize.model_validate(fields)


async def test_reducers_expressions_and_failures_on_an_embedded_node(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "node", http_port=0)
    agents = [IngestAgent(), OverviewAgent(), DiscoveryAgent()]
    async with EmbeddedNode(settings, agents=agents, serve_http=False) as node:
        client = node.client()
        await client.publish(stageiv_event())
        await node.runner.drain()
        store, registry = node.services.block_store, node.services.layers

        reducers = ["mean", "max", "min", "std", "count", "sum", "q50", "q95", "trend"]
        reply = await client.request(featurize("rain", reducers), "discovery.results", 120)
        assert isinstance(reply, FeatureResult) and reply.status == "ok", reply.error
        # independent: the eager mosaic reader and numpy
        arr = read_layer(store, registry, "stageiv", FLORENCE, WINDOW.start, WINDOW.end)
        vals = arr.values.astype(np.float64)
        steps = [k for k in reply.values if k != "all"]
        assert len(steps) == arr.sizes["time"] == 23
        for i, key in enumerate(sorted(steps)):
            got, v = reply.values[key], vals[i]
            assert got["count"] == np.isfinite(v).sum()
            assert got["max"] == pytest.approx(np.nanmax(v))
            assert got["min"] == pytest.approx(np.nanmin(v))
            assert got["mean"] == pytest.approx(np.nanmean(v), rel=1e-9)
            assert got["sum"] == pytest.approx(np.nansum(v), rel=1e-9)
            assert got["std"] == pytest.approx(np.nanstd(v), rel=1e-6)
            assert got["q50"] == pytest.approx(np.nanquantile(v, 0.5))
            assert got["q95"] == pytest.approx(np.nanquantile(v, 0.95))
        means = np.array([reply.values[k]["mean"] for k in sorted(steps)])
        years = arr["time"].values.astype("datetime64[s]").astype(float) / (365.25 * 86400)
        slope = np.polyfit(years - years.mean(), means, 1)[0]
        assert reply.values["all"]["trend"] == pytest.approx(slope, rel=1e-6)

        # user math: the count of hours over 50 mm equals the pixel search's count
        heavy = await client.request(
            featurize("where(rain > 50, 1, 0)", ["sum"]), "discovery.results", 120
        )
        assert isinstance(heavy, FeatureResult) and heavy.status == "ok"
        hits = search_pixels(store, registry, "stageiv", ">", 50.0, FLORENCE,
                             WINDOW.start, WINDOW.end)  # fmt: skip
        assert sum(v["sum"] for v in heavy.values.values()) == hits.total > 100

        # failures are answered, naming the cause
        cases = [
            (featurize("rain.__class__", ["mean"]), "attribute access"),
            (featurize("__import__('os')", ["mean"]), "only the listed functions"),
            (featurize("rain", ["mean"], layers={"rain": "nope"}), "nope"),
            (featurize("snow * 2", ["mean"]), "snow"),
            (
                featurize(
                    "rain",
                    ["mean"],
                    time=TimeRange(
                        start=datetime(2001, 1, 1, tzinfo=UTC),
                        end=datetime(2001, 1, 2, tzinfo=UTC),
                    ),
                ),
                "widen the time window",
            ),
        ]
        for bad, names in cases:
            failed = await client.request(bad, "discovery.results", 60)
            assert isinstance(failed, FeatureResult) and failed.status == "failed"
            assert names in (failed.error or ""), failed.error


async def test_kafka_worker_answers_featurize(
    tmp_path: Path, kafka_broker: KafkaBroker, unique_name: str
) -> None:
    async with kafka_harness(tmp_path, kafka_broker.bootstrap, unique_name) as h:
        await h.client.publish(stageiv_event())
        await h.collect(
            "overviews.updated",
            lambda evs: len({e.timestamp for e in evs if isinstance(e, OverviewsUpdated)}) >= 23,
            timeout=120,
        )
        reply = await h.client.request(featurize("rain", ["max", "count"]), "discovery.results", 60)
        assert isinstance(reply, FeatureResult) and reply.status == "ok", reply.error
        peak = max(v["max"] for v in reply.values.values())
        assert peak > 100  # Florence's extreme hourly rain, in mm
