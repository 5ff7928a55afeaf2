"""Federated placement on two real `gravitas node` workers (one real Kafka broker, the
shared federation topics, signed /rpc between their edges): node A runs the
methane-survey; one scene is registered on A, the other on B. Each scan (and the cut of
its plume patches) runs on the node that registered its scene (decided from A's catalog,
whose B item came from B's signed registration), only the step requests and answers
travel, and the run records fewer bytes moved than moving the radiance would have; B's
product item reaches A's catalog carrying its provenance (ran on B), and A's datacube
holds the patches of both scenes, equal to patches cut by hand from the original files.
Then an agent step (the methane agent on B's scene, run from A) runs on B's own agent,
forwarded over the same signed path, and B's edge refuses forged forwards."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from gravitas.agents.modules.plume_patches import ZARR
from gravitas.agents.workflows.shipped import template_spec
from gravitas.schemas.workflows import WorkflowStatus
from gravitas.storage.readers.emit_extent import emit_extent
from gravitas.storage.sampledata.emit_scene import Plume, make_emit_scene
from gravitas.streams.broker import KafkaBroker
from gravitas.streams.workflow_client import run_status
from tests.agents.test_agents_workflows_survey import WHEN, announce
from tests.fixtures.federation import FedNode, federation

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
TOKEN = "workflow-federation-token"


@pytest.fixture
async def two_nodes(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> AsyncIterator[tuple[FedNode, FedNode]]:
    def env(name: str, data: Path) -> dict[str, str]:
        (data / "files").mkdir(parents=True, exist_ok=True)
        return {}

    async with federation(
        kafka_broker.bootstrap, tmp_path, ("a", "b"), TOKEN, partitions=2, env=env
    ) as fed:
        yield fed.nodes["a"], fed.nodes["b"]


def assert_cube_by_hand(root: Path, paths: dict[str, Path]) -> None:
    """A's datacube holds, scene by scene, the patches cut by hand (numpy slicing of the
    retrieval on the original files) around each plume's pixel centroid."""
    import numpy as np
    import xarray as xr

    from gravitas.agents.methane_retrieval import retrieve_scene

    with xr.open_zarr(root, consolidated=True) as ds:
        scenes = orjson.loads(ds.attrs["scenes"])
        i = 0
        for s, scene in enumerate(scenes):
            node = "a" if scene.startswith("emit-on-a") else "b"
            product = retrieve_scene(paths[node], threshold=1000, min_pixels=5)
            enh, labels = np.asarray(product.grid.array, np.float32), product.labels
            for k in sorted(int(v) for v in np.unique(labels[labels > 0])):
                r, c = np.nonzero(labels == k)
                r0 = min(max(round(r.mean()) - 16, 0), enh.shape[0] - 32)
                c0 = min(max(round(c.mean()) - 16, 0), enh.shape[1] - 32)
                assert int(ds["scene"][i]) == s and int(ds["plume"][i]) == k
                np.testing.assert_array_equal(
                    ds["ch4_enhancement"].values[i], enh[r0 : r0 + 32, c0 : c0 + 32]
                )
                np.testing.assert_array_equal(
                    ds["label"].values[i], labels[r0 : r0 + 32, c0 : c0 + 32] > 0
                )
                i += 1
        assert i == ds.sizes["patch"]


async def _federated(edge: str, collection: str) -> dict[str, dict[str, object]]:
    async with httpx.AsyncClient() as http:
        resp = await http.get(
            f"{edge}/stac/search",
            params={"collections": collection, "federated": "true", "limit": 100},
        )
    resp.raise_for_status()
    return {f["id"]: f for f in resp.json()["features"]}


async def _until(check: object, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.3)


async def test_each_scan_runs_where_its_scene_is_and_only_results_move(
    two_nodes: tuple[FedNode, FedNode],
) -> None:
    a, b = two_nodes
    plumes = (Plume(20.0, 14.0, 5.0, 3500.0),)  # 2 plumes found on A's scene, 1 on B's
    paths = {}
    for node in (a, b):
        path = node.data_dir / "files" / f"EMIT_{node.name.upper()}.nc"
        make_emit_scene(path, 64, 48, plumes, seed=5 if node.name == "a" else 6)
        paths[node.name] = path
        await node.client.publish(announce(path, f"emit-on-{node.name}"))

    async def both_known() -> bool:
        items = await _federated(a.edge, "emit-l1b-rad")
        return {"emit-on-a", "emit-on-b"} <= set(items)

    await _until(both_known, "both scenes in A's federated catalog")
    w, s, e, n = emit_extent(paths["a"])[0]
    status = await a.client.run_workflow(
        template_spec("methane-survey"),
        {"bbox": [w - 0.1, s - 0.1, e + 0.1, n + 0.1]},
        run_id="fed-survey",
        timeout=300,
    )
    assert isinstance(status, WorkflowStatus)
    assert status.status == "succeeded", (status.error, a.worker.output(), b.worker.output())
    scans = {iid: p for iid, p in status.provenance.items() if p["module"] == "methane-scan@1.0.0"}
    ran = {p["inputs"]["scene"]["item_id"]: p["node"] for p in scans.values()}
    assert ran == {"emit-on-a": "a", "emit-on-b": "b"}
    on_b = next(p for p in scans.values() if p["node"] == "b")
    on_a = next(p for p in scans.values() if p["node"] == "a")
    assert on_a["bytes_moved"] == 0 and on_a["bytes_if_data_moved"] == 0
    radiance_b = paths["b"].stat().st_size
    assert on_b["bytes_if_data_moved"] == radiance_b
    assert 0 < on_b["bytes_moved"] < radiance_b / 100
    # each scene's plume patches are cut where its product is; only the patches move
    cuts = {iid: p for iid, p in status.provenance.items() if p["module"] == "plume-patches@1.0.0"}
    cut_on = {p["inputs"]["product"]["item_id"].split("-ch4-")[0]: p for p in cuts.values()}
    assert {k: p["node"] for k, p in cut_on.items()} == {"emit-on-a": "a", "emit-on-b": "b"}
    cut_b = cut_on["emit-on-b"]
    assert 1000 < cut_b["bytes_moved"] < cut_b["bytes_if_data_moved"]  # patches < products
    transfer = status.transfer
    print(f"transfer {transfer}; remote radiance {radiance_b} bytes")  # the figure in docs
    assert transfer["bytes_moved"] == on_b["bytes_moved"] + cut_b["bytes_moved"]
    assert transfer["bytes_moved"] < radiance_b / 100
    assert transfer["bytes_if_data_moved"] == radiance_b + cut_b["bytes_if_data_moved"]
    assert transfer["steps_per_node"] == {"a": 5, "b": 2}
    assert status.outputs["plume_counts"] == [2, 1]
    assert status.outputs["patches"] == 3  # one patch per plume
    cube_step = next(i for i in status.provenance if i.endswith(".cube"))
    assert_cube_by_hand(a.data_dir / "objects" / f"workflows/{cube_step}/{ZARR}", paths)

    # B's product is B's item (registered there, signed), seen on A with its provenance
    async def product_on_a() -> bool:
        items = await _federated(a.edge, "methane-survey")
        return len(items) == 4

    await _until(product_on_a, "the survey's four products on A")
    items = await _federated(a.edge, "methane-survey")
    cube = items[status.outputs["datacube_item"]]["properties"]
    assert cube["gravitas:ran_on"] == "a" and cube["methane:patches"] == 3  # type: ignore[index]
    assert len(cube["gravitas:input_items"]) == 2  # type: ignore[index,arg-type]
    by_scene = {
        str(i["properties"]["gravitas:input_items"][0]): i  # type: ignore[index]
        for i in items.values()
        if i["properties"]["gravitas:modules"] == ["methane-scan@1.0.0"]  # type: ignore[index]
    }
    b_item = by_scene["emit-l1b-rad/emit-on-b"]["properties"]
    assert b_item["gravitas:node"] == "b" and b_item["gravitas:ran_on"] == "b"  # type: ignore[index]
    assert b_item["gravitas:run_id"] == "fed-survey"  # type: ignore[index]
    assert b_item["datetime"] == WHEN.strftime("%Y-%m-%dT%H:%M:%SZ")  # type: ignore[index]

    await _agent_step_runs_on_its_owner(a, b, paths)
    await _forged_forwards_refused(a, b, paths["b"])


AGENT_SPEC = {
    "name": "fed-agent-step",
    "version": "1.0.0",
    "params": {"href": {"type": "string"}},
    "steps": {
        "ch4": {
            "module": "methane@1.0.0",
            "inputs": {
                "scene_id": "emit-on-b",
                "href": "${params.href}",
                "plume_threshold_ppm_m": 1000,
            },
        }
    },
    "outputs": {"item": "${steps.ch4.outputs.item_id}"},
}


async def _agent_step_runs_on_its_owner(a: FedNode, b: FedNode, paths: dict[str, Path]) -> None:
    """A methane agent step on B's scene, run from A, runs on B's own methane agent (the
    request forwarded over signed /rpc): B registers the product, only the answer moves,
    and A's run records node b and the bytes; a replay of the run changes nothing."""
    run = {"href": str(paths["b"])}
    status = await a.client.run_workflow(AGENT_SPEC, run, run_id="fed-agent", timeout=300)
    assert isinstance(status, WorkflowStatus)
    assert status.status == "succeeded", (status.error, a.worker.output(), b.worker.output())
    (prov,) = status.provenance.values()
    radiance_b = paths["b"].stat().st_size
    assert prov["node"] == "b" and prov["module"] == "methane@1.0.0"
    assert prov["bytes_if_data_moved"] == radiance_b
    assert 0 < prov["bytes_moved"] < radiance_b / 100
    assert status.transfer["steps_per_node"] == {"b": 1}
    # the enhancement was computed and stored on B, never on A
    assert (b.data_dir / "objects" / "methane" / "emit-on-b").is_dir()
    assert not (a.data_dir / "objects" / "methane" / "emit-on-b").exists()
    # B's product item (B's own registration), seen on A signed by B
    item_id = str(status.outputs["item"])

    async def product_on_a() -> bool:
        return item_id in await _federated(a.edge, "methane-enhancement")

    await _until(product_on_a, "B's methane product in A's federated catalog")
    on_a = (await _federated(a.edge, "methane-enhancement"))[item_id]
    assert on_a["properties"]["gravitas:node"] == "b"  # type: ignore[index]
    cog = b.data_dir / "objects" / "methane" / "emit-on-b" / "ch4_enhancement.tif"
    before = cog.read_bytes()
    # the same run asked again: nothing runs again, the record stays (latest status)
    await a.client.run_workflow(AGENT_SPEC, run, run_id="fed-agent", wait=False)
    await asyncio.sleep(2.0)
    latest = await run_status(a.client, "fed-agent")
    assert latest.provenance == status.provenance and latest.transfer == status.transfer
    assert cog.read_bytes() == before
    print(f"agent step transfer {status.transfer}; radiance {radiance_b} bytes")


async def _forged_forwards_refused(a: FedNode, b: FedNode, href: Path) -> None:
    """B's edge refuses a forward signed by a node it is not configured with, one that
    claims to be A with another key, and a token request naming workflows.runs; B
    stores nothing of them."""
    from gravitas.agents.signing import NodeIdentity
    from gravitas.schemas.events import MethaneRequested
    from gravitas.schemas.settings import load_settings

    forged = MethaneRequested(
        request_id="fed-agent.a0.ch4",
        scene_id="emit-forged",
        href=str(href),
        plume_threshold_ppm_m=1000,
        reply_topic="workflows.runs",
    )
    body = forged.model_dump_json().encode()
    path = "/rpc/methane.requests"
    mallory = NodeIdentity.load(load_settings(data_dir=a.data_dir.parent / "m", node_id="m"))
    evil_a = NodeIdentity.load(load_settings(data_dir=a.data_dir.parent / "x", node_id="a"))
    async with httpx.AsyncClient() as http:
        for who, signer in (("'m'", mallory), ("'a'", evil_a)):
            resp = await http.post(
                f"{b.edge}{path}", content=body, headers=signer.sign_request(path, body)
            )
            assert resp.status_code == 401, resp.text
            assert "forwarded request refused" in resp.text and who in resp.text, resp.text
        resp = await http.post(
            f"{b.edge}{path}", content=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert resp.status_code == 403 and "'workflows.runs'" in resp.text, resp.text
    assert not (b.data_dir / "objects" / "methane" / "emit-forged").exists()
    assert not any(
        i.startswith("emit-forged") for i in await _federated(b.edge, "methane-enhancement")
    )
