"""A ``datacube`` step right after a ``methane`` step in one workflow run: the methane
agent registers its enhancement item not yet onboarded, so the datacube request that
arrives before the overview agent merged the layer parks on it and resumes on the
onboarding event; its datacube equals one built after the merge, and a replay of the
run's requests changes nothing (same bytes, versions, ids).

The overview agent is held (a real :class:`OverviewAgent` behind a gate) until the
datacube request is parked, so the race is not left to timing."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from gravitas.agents.base import AgentContext, Emit
from gravitas.agents.overviews import OverviewAgent
from gravitas.agents.registration import ONBOARDED
from gravitas.schemas.base import Event
from gravitas.schemas.codec import decode
from gravitas.schemas.events import DatacubeReady, DatacubeRequested, MethaneRequested
from gravitas.schemas.settings import load_settings
from gravitas.schemas.workflows import WorkflowStatus
from gravitas.storage.readers.emit_extent import emit_extent
from gravitas.storage.sampledata.emit_scene import Plume, make_emit_scene
from gravitas.streams.node import EmbeddedNode
from gravitas.streams.registry import select_agents
from gravitas.streams.workflow_client import run_status
from tests.fixtures.state import blocks_digest, catalog_digest, fingerprint

WHEN = datetime(2024, 5, 1, 17, 0, tzinfo=UTC)
PLUMES = (Plume(20.0, 14.0, 4.0, 2500.0), Plume(44.0, 32.0, 4.0, 3000.0))
ITEM = ("methane-enhancement", "emit-race-ch4")


class GatedOverviewAgent(OverviewAgent):
    """The real overview agent, which starts merging once :attr:`gate` is set."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        await self.gate.wait()
        return await super().handle(event, ctx)


@dataclass
class Gated:
    node: EmbeddedNode
    overviews: GatedOverviewAgent


@pytest.fixture(scope="module")
def emit_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("emit-race") / "EMIT_RACE.nc"
    make_emit_scene(path, 64, 48, PLUMES, seed=4)
    return path


@asynccontextmanager
async def gated_node(tmp: Path, scene: Path, serve_http: bool = False) -> AsyncIterator[Gated]:
    settings = load_settings(
        data_dir=tmp, http_port=0, broker="memory://", allowed_roots=(scene.parent,)
    )
    overviews = GatedOverviewAgent()
    agents = [overviews if isinstance(a, OverviewAgent) else a for a in select_agents(())]
    async with EmbeddedNode(settings, agents=agents, serve_http=serve_http) as node:
        yield Gated(node, overviews)


def cube_inputs(path: Path, collection: str) -> dict[str, Any]:
    w, s, e, n = emit_extent(path)[0]
    return {
        "modalities": [{"name": "ch4", "collection": collection, "layers": ["ch4_enhancement"]}],
        "bbox": [w, s, e, n],
        "start": "2000-01-01T00:00:00Z",
        "end": "2030-01-01T00:00:00Z",
        "time_step_s": 1e9,
        "level": 20,
        "patch_size": 8,
        "min_valid_fraction": 0.0,
        "seed": 1,
    }


def survey_spec(scene: Path) -> dict[str, Any]:
    """methane -> datacube of its product (the datacube reads the step's collection)."""
    return {
        "name": "methane-cube",
        "version": "1.0.0",
        "steps": {
            "ch4": {
                "module": "methane@1.0.0",
                "inputs": {
                    "scene_id": "emit-race",
                    "href": str(scene),
                    "plume_threshold_ppm_m": 1000,
                },
            },
            "cube": {
                "module": "datacube@1.0.0",
                "inputs": cube_inputs(scene, "${steps.ch4.outputs.collection}"),
            },
        },
        "outputs": {"counts": "${steps.cube.outputs.counts}"},
    }


def topic_events(node: EmbeddedNode, topic: str) -> list[Event]:
    physical = node.topology.physical(topic)
    out: list[Event] = []
    for p in range(node.topology.partitions(topic)):
        for rec in node.bus.read(physical, p, 0, 100_000):
            out.append(decode(rec.value, node.topology.events(topic)))
    return out


async def until(check: Any, timeout: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def cube_arrays(node: EmbeddedNode, href: str) -> xr.Dataset:
    """The datacube's Zarr read back from the object store."""
    store = node.services.object_store
    key = href.split("/objects/", 1)[-1]
    tmp = Path(tempfile.mkdtemp(prefix="gravitas-cube-"))
    for k in store.list(key + "/"):
        dest = tmp / k[len(key) + 1 :]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(store.get_bytes(k))
    return xr.open_zarr(tmp, consolidated=False).load()


async def parked_then_resumed(g: Gated, scene: Path, run_id: str) -> WorkflowStatus:
    """Run methane -> datacube with the merge held until the datacube request parked."""
    node = g.node
    client = node.client()
    await client.run_workflow(survey_spec(scene), {}, run_id=run_id, wait=False)
    await until(lambda: any(getattr(e, "request_id", "").startswith(run_id)
                            for e in topic_events(node, "onboard.results")))  # fmt: skip
    item = node.services.catalog.get_item(*ITEM)
    assert item["properties"][ONBOARDED] is False  # not ready until the layer is merged
    assert item["assets"]["plumes"]["roles"] == ["metadata"]  # not a band of the layer
    assert not [e for e in topic_events(node, "workflows.runs") if isinstance(e, DatacubeReady)]
    status = await run_status(client, run_id, timeout=0.5)
    assert status.status == "running", status
    g.overviews.gate.set()
    await node.runner.drain(120)
    return await run_status(client, run_id, timeout=0.5)


async def test_datacube_right_after_methane_parks_and_resumes(
    tmp_path: Path, emit_scene: Path
) -> None:
    async with gated_node(tmp_path / "n", emit_scene) as g:
        node = g.node
        status = await parked_then_resumed(g, emit_scene, "race-1")
        assert status.status == "succeeded", status.error
        item = node.services.catalog.get_item(*ITEM)
        assert item["properties"][ONBOARDED] is True
        parked = [e for e in topic_events(node, "onboard.results")
                  if getattr(e, "request_id", "") == "race-1.a0.cube"]  # fmt: skip
        assert len(parked) == 1  # it did park (and was resumed, since the run succeeded)
        ready = [e for e in topic_events(node, "workflows.runs") if isinstance(e, DatacubeReady)]
        assert len(ready) == 1 and ready[0].status == "ok"
        resumed = ready[0]

        # the same datacube requested after the merge (nothing to park on) is the same cube
        inputs = cube_inputs(emit_scene, "methane-enhancement")
        after = DatacubeRequested.model_validate(
            {
                **{k: v for k, v in inputs.items() if k not in ("start", "end")},
                "time": {"start": inputs["start"], "end": inputs["end"]},
                "request_id": "after-merge",
            }
        )
        direct = await node.client().request(after, after.reply_topic, 120)
        assert isinstance(direct, DatacubeReady) and direct.status == "ok", direct.error
        assert resumed.counts == direct.counts and sum(direct.counts.values()) > 0
        assert resumed.class_counts == direct.class_counts
        got, want = (
            cube_arrays(node, resumed.hrefs["data"]),
            cube_arrays(node, direct.hrefs["data"]),
        )
        assert set(got.data_vars) == set(want.data_vars) and got.data_vars
        for name in want.data_vars:
            np.testing.assert_array_equal(got[name].values, want[name].values)

        # a replay of the run's requests (same events, same ids) changes nothing
        await node.runner.drain()
        before = fingerprint(node.services)
        digests = (blocks_digest(node.services.block_store), catalog_digest(node.services.catalog))
        client = node.client()
        (methane,) = [e for e in topic_events(node, "methane.requests")
                      if isinstance(e, MethaneRequested)]  # fmt: skip
        cubes = [e for e in topic_events(node, "requests.datacube")
                 if getattr(e, "request_id", "") == "race-1.a0.cube"]  # fmt: skip
        assert len(cubes) == 2  # the request and its resumption
        for event in (methane, *cubes):
            await client.publish(event)
        await node.runner.drain(120)
        assert fingerprint(node.services) == before
        assert (blocks_digest(node.services.block_store),
                catalog_digest(node.services.catalog)) == digests  # fmt: skip
        again = await run_status(client, "race-1", timeout=0.5)
        assert again.status == "succeeded" and again.outputs == status.outputs
