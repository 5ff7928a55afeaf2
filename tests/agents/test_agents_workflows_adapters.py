"""Step adapters of the built-in agent modules register, methane and datacube: each step's
request goes on its agent's topic and the run advances on the agent's answer. A step's
outputs equal the agent run directly (a plain request on another node, whose answers go
to the agent's own topic), failing requests fail the run naming the step's error, bad
step inputs are refused naming the spec path with nothing stored, and an agent's own
moved bytes reach the run's placement record once (a replayed answer adds nothing)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from gravitas.schemas.agent_answers import SceneAccepted
from gravitas.schemas.events import (
    BlocksIndexed,
    DatacubeReady,
    DatacubeRequested,
    MethaneEnhanced,
    MethaneRequested,
    OverviewsUpdated,
    SceneAnnounced,
)
from gravitas.schemas.settings import load_settings
from gravitas.schemas.training import ModelTrained
from gravitas.schemas.workflows import WorkflowStatus
from gravitas.storage.catalog.base import SearchParams
from gravitas.storage.readers.emit_extent import emit_extent
from gravitas.storage.sampledata.emit_scene import Plume, make_emit_scene
from gravitas.streams.broker import KafkaBroker
from gravitas.streams.node import EmbeddedNode
from gravitas.streams.workflow_client import run_workflow
from tests.fixtures.nodes import kafka_harness

WHEN = datetime(2024, 5, 1, 17, 0, tzinfo=UTC)
PLUMES = (Plume(20.0, 14.0, 4.0, 2500.0), Plume(44.0, 32.0, 4.0, 3000.0))


@pytest.fixture(scope="module")
def emit_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("emit-adapters") / "EMIT_ADAPT.nc"
    make_emit_scene(path, 64, 48, PLUMES, seed=4)
    return path


def node_at(tmp: Path, name: str, scene: Path) -> EmbeddedNode:
    settings = load_settings(
        data_dir=tmp / name, http_port=0, broker="memory://", allowed_roots=(scene.parent,)
    )
    return EmbeddedNode(settings, serve_http=False)


def spec(steps: dict[str, Any], outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": "adapters", "version": "1.0.0", "steps": steps, "outputs": outputs or {}}


def register_step(path: Path) -> dict[str, Any]:
    bbox, _ = emit_extent(path)
    return {
        "module": "register@1.0.0",
        "inputs": {
            "scene_id": "emit-adapt",
            "collection": "emit-l1b-rad",
            "hrefs": [str(path)],
            "mode": "lazy",
            "datetime": WHEN.isoformat(),
            "bbox": list(bbox),
        },
    }


def cube_inputs(path: Path) -> dict[str, Any]:
    w, s, e, n = emit_extent(path)[0]
    return {
        "modalities": [
            {"name": "ch4", "collection": "methane-enhancement", "layers": ["ch4_enhancement"]}
        ],
        "bbox": [w, s, e, n],
        "start": "2000-01-01T00:00:00Z",  # the retrieval stamps the scene's own time
        "end": "2030-01-01T00:00:00Z",
        "time_step_s": 1e9,
        "level": 20,
        "patch_size": 8,
        "min_valid_fraction": 0.0,
        "seed": 1,
    }


async def run(node: EmbeddedNode, wf: dict[str, Any], **kw: Any) -> WorkflowStatus:
    status = await node.client().run_workflow(wf, {}, timeout=240, **kw)
    assert isinstance(status, WorkflowStatus)
    return status


def catalog_ids(node: EmbeddedNode) -> set[str]:
    return {i["id"] for i in node.services.catalog.search(SearchParams(limit=1000)).items}


def cog_sha(node: EmbeddedNode, href: str) -> str:
    key = href.split("/objects/", 1)[-1] if "/objects/" in href else ""
    store = node.services.object_store
    key = key or "methane/emit-adapt/ch4_enhancement.tif"
    return hashlib.sha256(store.get_bytes(key)).hexdigest()


async def test_register_methane_datacube_steps_equal_the_agents_run_directly(
    tmp_path: Path, emit_scene: Path
) -> None:
    steps = {
        "reg": register_step(emit_scene),
        "ch4": {
            "module": "methane@1.0.0",
            "inputs": {
                "scene_id": "${steps.reg.outputs.item_id}",
                "href": str(emit_scene),
                "plume_threshold_ppm_m": 1000,
            },
        },
    }
    cube_step = {"cube": {"module": "datacube@1.0.0", "inputs": cube_inputs(emit_scene)}}
    async with node_at(tmp_path, "wf", emit_scene) as node:
        status = await run(node, spec(steps), run_id="adapt-1")
        assert status.status == "succeeded", status.error
        await node.runner.drain()  # the methane layer's pyramids merged (see the Kafka test)
        cubed = await run(node, spec(cube_step), run_id="adapt-2")
        assert cubed.status == "succeeded", cubed.error
        outs = {iid.rsplit(".", 1)[1]: p for iid, p in status.provenance.items()}
        outs |= {iid.rsplit(".", 1)[1]: p for iid, p in cubed.provenance.items()}
        assert set(outs) == {"reg", "ch4", "cube"}
        assert {p["node"] for p in outs.values()} == {node.services.settings.node_id}
        by_step = {s: status_outputs(node, status, s) for s in ("reg", "ch4")}
        by_step["cube"] = status_outputs(node, cubed, "cube")
        wf_cog = cog_sha(node, by_step["ch4"]["cog_href"])
        again = await run(node, spec(steps), run_id="adapt-1")  # replay: nothing new
        assert again.provenance == status.provenance

    # the same three requests run directly on a fresh node, answered on the agents' topics
    async with node_at(tmp_path, "direct", emit_scene) as direct:
        client = direct.client()
        reg = register_step(emit_scene)["inputs"]
        await client.publish(SceneAnnounced.model_validate(reg))
        await direct.runner.drain()
        item = direct.services.catalog.get_item("emit-l1b-rad", "emit-adapt")
        assert by_step["reg"] == {"item_id": item["id"], "collection": "emit-l1b-rad",
                                  "version": 1, "mode": "lazy", "layers": []}  # fmt: skip
        m = MethaneRequested(
            request_id=f"m-{uuid.uuid4().hex[:6]}",
            scene_id="emit-adapt",
            href=str(emit_scene),
            plume_threshold_ppm_m=1000,
        )
        enhanced = await client.request(m, "methane.enhanced", 240)
        assert isinstance(enhanced, MethaneEnhanced)
        ch4 = by_step["ch4"]
        assert ch4["item_id"] == enhanced.item_id and ch4["layer"] == enhanced.layer
        assert ch4["max_ppm_m"] == enhanced.max_ppm_m
        assert ch4["background_mean_ppm_m"] == enhanced.background_mean_ppm_m
        assert ch4["plume_count"] == enhanced.plume_count >= 1
        assert cog_sha(direct, enhanced.cog_href) == wf_cog  # the same enhancement bytes
        fc = orjson.loads(
            direct.services.object_store.get_bytes("methane/emit-adapt/plumes.geojson")
        )
        keys = ("plume_id", "max_ppm_m", "mean_ppm_m", "area_m2", "ime_kg")
        assert ch4["plumes"] == [{k: f["properties"][k] for k in keys} for f in fc["features"]]
        await direct.runner.drain()
        inputs = cube_inputs(emit_scene)
        req = DatacubeRequested.model_validate(
            {
                **{k: v for k, v in inputs.items() if k not in ("start", "end")},
                "time": {"start": inputs["start"], "end": inputs["end"]},
                "request_id": "direct-cube",
            }
        )
        ready = await client.request(req, req.reply_topic, 240)
        assert isinstance(ready, DatacubeReady) and ready.status == "ok", ready.error
        cube = by_step["cube"]
        assert cube["counts"] == ready.counts and cube["class_counts"] == ready.class_counts
        assert cube["gap_filled_fraction"] == ready.gap_filled_fraction
        assert cube["zarr_href"].endswith(".zarr") and sum(ready.counts.values()) > 0


def status_outputs(node: EmbeddedNode, status: WorkflowStatus, step: str) -> dict[str, Any]:
    """The outputs the workflow agent recorded for a step's instance."""
    from gravitas.agents.workflows.agent import WorkflowAgent

    agent = next(a for a in node.agents if isinstance(a, WorkflowAgent))
    assert agent.store is not None
    outcomes = agent.store.outcomes(status.run_id)
    (iid,) = [i for i in outcomes if i.endswith(f".{step}")]
    return dict(outcomes[iid]["outputs"])


async def test_failing_agent_requests_fail_the_run_naming_the_step_error(
    tmp_path: Path, emit_scene: Path
) -> None:
    outside = tmp_path / "elsewhere" / "EMIT_X.nc"
    outside.parent.mkdir()
    outside.write_bytes(emit_scene.read_bytes())
    async with node_at(tmp_path, "wf", emit_scene) as node:
        before = catalog_ids(node)
        # the methane agent refuses a file outside the allowed roots: the run fails there
        bad = await run(node, spec({"ch4": {"module": "methane@1.0.0", "inputs": {
            "scene_id": "x", "href": str(outside)}}}))  # fmt: skip
        assert bad.status == "failed" and bad.failed_step == "ch4"
        assert "step ch4" in (bad.error or "") and str(outside) in (bad.error or "")
        # the ingest agent refuses the same file for register
        reg = register_step(outside)
        bad = await run(node, spec({"reg": reg}))
        assert bad.status == "failed" and bad.failed_step == "reg"
        assert str(outside) in (bad.error or "")
        # the datacube agent answers failed for a layer nobody has, naming its step
        cube = {**cube_inputs(emit_scene), "modalities": [{"name": "x", "layers": ["nope"]}]}
        bad = await run(node, spec({"cube": {"module": "datacube@1.0.0", "inputs": cube}}))
        assert bad.status == "failed" and bad.failed_step == "cube"
        assert "datacube step" in (bad.error or "") and "nope" in (bad.error or "")
        assert catalog_ids(node) == before
        assert list(node.services.object_store.list("methane/")) == []


BAD_INPUTS: list[tuple[str, dict[str, Any], str]] = [
        ("methane@1.0.0", {"scene_id": "a", "href": "/data/x.nc", "window_nm": [2400, 2100]},
         "steps.s.inputs.window_nm"),
        ("methane@1.0.0", {"scene_id": "a/../b", "href": "/data/x.nc"}, "scene_id"),
        ("methane@1.0.0", {"scene_id": "a", "href": "/data/x.nc", "iterations": 10**6},
         "iterations"),
        ("register@1.0.0", {"scene_id": "a", "collection": "c", "hrefs": []}, "hrefs"),
        ("register@1.0.0", {"scene_id": "a", "collection": "c", "hrefs": ["/data/x.nc"],
                            "band_names": ["a", "b"]}, "band_names"),
        ("datacube@1.0.0", {"modalities": [{"name": "X!", "layers": ["a"]}],
                            "bbox": [0, 0, 1, 1], "start": "2024-01-01T00:00:00Z",
                            "end": "2024-01-02T00:00:00Z", "level": 10},
         "steps.s.inputs.modalities.0.name"),
        ("datacube@1.0.0", {"modalities": [{"name": "x", "layers": ["a"]}],
                            "bbox": [0, 0, 1, 1], "start": "2024-01-02T00:00:00Z",
                            "end": "2024-01-01T00:00:00Z"}, "steps.s.inputs.start"),
        ("datacube@1.0.0", {"modalities": [{"name": "x", "layers": ["a"]}],
                            "bbox": [0, 0, 1, 1], "start": "2024-01-01T00:00:00Z",
                            "end": "2024-01-02T00:00:00Z"}, "give either level"),
    ]  # fmt: skip


async def test_bad_agent_step_inputs_are_refused_naming_the_path(tmp_path: Path) -> None:
    async with node_at(tmp_path, "wf", tmp_path / "x.nc") as node:
        for module, inputs, named in BAD_INPUTS:
            bad = await run(node, spec({"s": {"module": module, "inputs": inputs}}))
            assert bad.status == "failed" and bad.failed_step == "s", bad
            error = bad.error or ""
            assert "inputs refused" in error and named in error, (named, error)
        assert catalog_ids(node) == set()
        assert list(node.services.object_store.list("")) == []


async def test_agent_moved_bytes_are_counted_once(tmp_path: Path, emit_scene: Path) -> None:
    """A training step's parameter exchange (the agent's own moved bytes) is in the run's
    transfer record; the same answer delivered again changes nothing, and another
    agent's answer under the step's id is ignored."""
    from gravitas.agents.workflows.agent import WorkflowAgent, WorkflowIntakeAgent
    from gravitas.streams.workflow_client import run_status

    settings = load_settings(data_dir=tmp_path / "n", http_port=0, broker="memory://")
    cube = {
        "request_id": "tr",
        "modalities": [{"name": "s2", "layers": ["b04"]}],
        "bbox": [0, 0, 1, 1],
        "level": 10,
        "label": {"layer": "lab"},
        "time": {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"},
    }
    train = {"spec": {"datacube": cube, "classes": [1, 2]}}  # fmt: skip
    agents = [WorkflowIntakeAgent(), WorkflowAgent()]
    async with EmbeddedNode(settings, agents=agents, serve_http=False) as node:
        client = node.client()
        wf = spec({"t": {"module": "train@1.0.0", "inputs": train}})
        await client.run_workflow(wf, {}, run_id="bytes-1", wait=False)
        await node.runner.drain()
        me = settings.node_id
        # another agent's answer under the training step's id is not its outcome
        forged = SceneAccepted(request_id="bytes-1.a0.t", item_id="forged", version=1)
        await client.publish(forged, "workflows.runs")
        await node.runner.drain()
        still = await run_status(client, "bytes-1", timeout=0.5)
        assert still.status == "running" and still.provenance == {}, still
        answer = ModelTrained(request_id="bytes-1.a0.t", coordinator=me, bytes_moved=12345)
        for event in (answer, answer, answer.model_copy(update={"event_id": uuid.uuid4()})):
            await client.publish(event, "workflows.runs")
            await node.runner.drain()
        status = await run_status(client, "bytes-1", timeout=0.5)
        assert status.status == "succeeded", status
        assert status.transfer["bytes_moved"] == 12345
        assert status.provenance["bytes-1.a0.t"]["bytes_moved"] == 12345


@pytest.mark.kafka
@pytest.mark.slow
async def test_agent_steps_on_a_kafka_worker(
    tmp_path: Path, emit_scene: Path, kafka_broker: KafkaBroker, unique_name: str
) -> None:
    """register -> methane, then a datacube of the enhancement layer, through a real
    Kafka worker: the requests travel on the agents' topics, their answers on
    ``workflows.runs``; the outputs equal the in-process run of the same steps.

    The datacube runs as a second workflow after the methane layer's pyramids are
    merged (a datacube right after the methane step parks on the product until then:
    tests/agents/test_agents_workflows_methane_cube.py)."""
    first = spec(
        {"reg": register_step(emit_scene),
         "ch4": {"module": "methane@1.0.0", "inputs": {
             "scene_id": "${steps.reg.outputs.item_id}", "href": str(emit_scene),
             "plume_threshold_ppm_m": 1000}}},
        {"item": "${steps.reg.outputs.item_id}", "plumes": "${steps.ch4.outputs.plumes}",
         "max": "${steps.ch4.outputs.max_ppm_m}"},
    )  # fmt: skip
    second = spec(
        {"cube": {"module": "datacube@1.0.0", "inputs": cube_inputs(emit_scene)}},
        {"counts": "${steps.cube.outputs.counts}"},
    )
    env = {"GRAVITAS_ALLOWED_ROOTS": orjson.dumps([str(emit_scene.parent)]).decode()}
    async with kafka_harness(tmp_path, kafka_broker.bootstrap, unique_name, extra_env=env) as h:
        status = await run_workflow(h.client, first, {}, run_id="kafka-ch4", timeout=240)
        assert isinstance(status, WorkflowStatus)
        assert status.status == "succeeded", (status.error, h.workers[0].output()[-3000:])
        indexed = await h.collect("pixels.indexed", lambda evs: bool(evs), timeout=60)
        pyramids = max(e.pyramids for e in indexed if isinstance(e, BlocksIndexed))
        await h.collect(
            "overviews.updated",
            lambda evs: sum(isinstance(e, OverviewsUpdated) for e in evs) >= pyramids,
            timeout=60,
        )
        cube = await run_workflow(h.client, second, {}, run_id="kafka-cube", timeout=240)
        assert isinstance(cube, WorkflowStatus) and cube.status == "succeeded", cube.error
    async with node_at(tmp_path, "memory", emit_scene) as node:
        local = await run(node, first, run_id="kafka-ch4")
        await node.runner.drain()
        local_cube = await run(node, second, run_id="kafka-cube")
    assert local.status == "succeeded" and local.outputs == status.outputs
    assert local_cube.outputs == cube.outputs and sum(cube.outputs["counts"].values()) > 0
    assert status.outputs["plumes"]
