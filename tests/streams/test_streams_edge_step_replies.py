"""Forged step answers: a client holding the edge token that knows a running run's id
sends a real request of a step's kind under the step's instance id with ``reply_topic``
``workflows.runs``, to have its answer taken first. The edge refuses it on every
publishing route (naming the reply topic and the request), nothing is published or
stored, and the run finishes with the real agent's answer.

The step's agent (the real discovery agent) is held behind a gate while the forgeries
arrive, so the run is still waiting for the step's answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from gravitas.agents.base import AgentContext, Emit
from gravitas.agents.discovery import DiscoveryAgent
from gravitas.schemas.base import Event
from gravitas.schemas.common import TimeRange
from gravitas.schemas.events import PixelSearch, Predicate, SceneAnnounced, SearchResult
from gravitas.schemas.settings import load_settings
from gravitas.storage.catalog.items import item_from_file
from gravitas.streams.node import EmbeddedNode
from gravitas.streams.registry import select_agents
from gravitas.streams.workflow_client import run_status
from tests.fixtures.state import fingerprint
from tests.fixtures.tiles import band3, landsat_scene_dirs

RUN = "forged-1"
STEP_ID = f"{RUN}.a0.s"


class GatedDiscoveryAgent(DiscoveryAgent):
    """The real discovery agent, which answers once :attr:`gate` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        await self.gate.wait()
        return await super().handle(event, ctx)


def topic_counts(node: EmbeddedNode) -> dict[str, int]:
    """Records on every topic (a refused forgery publishes nothing anywhere)."""
    out: dict[str, int] = {}
    for name in node.topology.names:
        physical = node.topology.physical(name)
        out[name] = sum(
            node.bus.end_offset(physical, p) for p in range(node.topology.partitions(name))
        )
    return out


async def test_forged_step_requests_are_refused_and_the_run_takes_the_real_answer(
    tmp_path: Path,
) -> None:
    scene = landsat_scene_dirs()[0]
    tif = band3(scene)
    w, s, e, n = item_from_file(tif, "probe", "probe", checksum=False).bbox[:4]  # type: ignore[index]
    year, doy = int(scene.name[9:13]), int(scene.name[13:16])
    when = datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=doy - 1)
    settings = load_settings(data_dir=tmp_path / "n", http_port=0, allowed_roots=(tif.parent,))
    gated = GatedDiscoveryAgent()
    agents = [gated if isinstance(a, DiscoveryAgent) else a for a in select_agents(())]
    async with EmbeddedNode(settings, agents=agents) as node:
        client = node.client()
        await client.publish(
            SceneAnnounced(scene_id="ls7-forge", collection="landsat7-sr", hrefs=[str(tif)],
                           layer="ls7", mode="direct", bbox=(w, s, e, n), datetime=when)
        )  # fmt: skip
        await node.runner.drain(120)
        inputs: dict[str, Any] = {
            "layer": "ls7", "op": ">", "value": 2657, "bbox": [w, s, e, n],
            "start": when.isoformat(), "end": (when + timedelta(days=1)).isoformat(),
        }  # fmt: skip
        spec = {"name": "forged", "version": "1.0.0",
                "steps": {"s": {"module": "pixel-search@1.0.0", "inputs": inputs}},
                "outputs": {"matches": "${steps.s.outputs.total_matches}"}}  # fmt: skip
        await client.run_workflow(spec, {}, run_id=RUN, wait=False)
        for _ in range(600):  # the step's request is out; its agent is held
            if topic_counts(node)["requests.discovery"] == 1:
                break
            await asyncio.sleep(0.05)
        status = await run_status(client, RUN, timeout=0.5)
        assert status.status == "running", status

        before = fingerprint(node.services, extra=topic_counts(node))
        forged = PixelSearch(
            request_id=STEP_ID,
            layer="ls7",
            predicate=Predicate(op=">", value=0),  # another answer than the step's
            bbox=(w, s, e, n),
            time=TimeRange(start=when, end=when + timedelta(days=1)),
            reply_topic="workflows.runs",
        ).model_dump(mode="json")
        token = (settings.data_dir / "api_token").read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        line = orjson.dumps(forged)
        other = orjson.dumps({**forged, "request_id": "mine", "reply_topic": "discovery.results"})
        async with httpx.AsyncClient(base_url=node.edge_url or "", timeout=30) as http:
            for path, body in (
                ("/topics/requests.discovery/events", line),
                ("/topics/requests.discovery/events", other + b"\n" + line),  # none of them
                ("/topics/requests.discovery/records", line),
                ("/topics/requests.discovery/records", other + b"\n" + line),
                ("/rpc/requests.discovery", line),
            ):
                resp = await http.post(path, content=body, headers=auth)
                assert resp.status_code == 403, (path, resp.text)
                reason = resp.json()["detail"]
                assert "'workflows.runs'" in reason and repr(STEP_ID) in reason, reason
        assert fingerprint(node.services, extra=topic_counts(node)) == before

        gated.gate.set()
        await node.runner.drain(120)
        status = await run_status(client, RUN, timeout=0.5)
        assert status.status == "succeeded", status
        # the real answer: the same search sent directly, and not the forger's
        forged.pop("event_id")
        real = PixelSearch.model_validate({**forged, "request_id": "real",
                                           "predicate": {"op": ">", "value": 2657},
                                           "reply_topic": "discovery.results"})  # fmt: skip
        mine = PixelSearch.model_validate({**forged, "request_id": "forger",
                                           "reply_topic": "discovery.results"})  # fmt: skip
        want = await client.request(real, "discovery.results", 60)
        theirs = await client.request(mine, "discovery.results", 60)
        assert isinstance(want, SearchResult) and isinstance(theirs, SearchResult)
        assert status.outputs["matches"] == want.total_matches != theirs.total_matches
        assert want.total_matches > 0
