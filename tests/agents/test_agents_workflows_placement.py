"""Placement decisions (fast, one embedded node): a step goes to the configured peer
whose registered items hold most of its input bytes; claims in the step's inputs, items
of nodes that are not peers, and unknown items place nothing elsewhere; a step another
node placed on a third node is refused naming it, with nothing run or stored."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from gravitas.agents.modules.agent import ModuleAgent
from gravitas.agents.modules.placement import place
from gravitas.agents.workflows.agent_placement import place_agent_step
from gravitas.agents.workflows.transfer import transfer_of
from gravitas.schemas.peers import Peer
from gravitas.schemas.settings import load_settings
from gravitas.schemas.workflows import StepFinished, StepRequested
from gravitas.streams.node import EmbeddedNode

KEY = base64.b64encode(bytes(range(32))).decode()


def item(item_id: str, size: int) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": "emit-l1b-rad",
        "bbox": [0.0, 0.0, 1.0, 1.0],
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]],
        },
        "properties": {"datetime": "2024-05-01T17:00:00Z"},
        "links": [],
        "assets": {"data": {"href": f"/x/{item_id}.nc", "file:size": size}},
    }


def ref(item_id: str, **claims: Any) -> dict[str, Any]:
    return {"collection": "emit-l1b-rad", "item_id": item_id, "href": "/x", **claims}


async def test_placement_follows_the_catalog_not_the_claims(tmp_path: Path) -> None:
    peers = {"b": Peer(public_key=KEY, api_url="http://127.0.0.1:9")}
    settings = load_settings(data_dir=tmp_path / "a", node_id="a", http_port=0, peers=peers)
    async with EmbeddedNode(settings, agents=[ModuleAgent()], serve_http=False) as node:
        s = node.services
        s.catalog.upsert_item(item("mine", 100))
        s.catalog.upsert_item(item("on-b", 5000), owning_node="b")
        s.catalog.upsert_item(item("on-zz", 10**9), owning_node="zz")  # not a peer
        assert place(s, {"scene": ref("on-b")}).node == "b"
        assert place(s, {"scene": ref("mine", node="b")}).node == "a"  # claim ignored
        assert place(s, {"scene": ref("on-zz")}).node == "a"  # never to a non-peer
        assert place(s, {"scene": ref("unknown", node="b")}).node == "a"
        both = place(s, {"scenes": [ref("mine"), ref("on-b")]})
        assert both.node == "b" and both.held == {"a": 100, "b": 5000} and both.items == 2
        assert place(s, {"x": 1}).node == "a"
        # what a step placed on b moved, against moving b's data here
        request = {"inputs": {"scene": ref("on-b")}, "held": {"b": 5000}}
        moved, data = transfer_of("a", request, "b", {"plume_count": 1}, 0)
        assert data == 5000 and 0 < moved < 200
        assert transfer_of("a", request, "a", {"plume_count": 1}, 0) == (0, 0)

        # a step another node placed on a third node: refused, nothing run or stored
        forged = StepRequested(
            run_id="r",
            step_id="r.a0.scan",
            module="methane-scan@1.0.0",
            inputs={"scene": ref("mine")},
            node="c",
            node_id="evil",
        )
        async with node.transport.subscription("workflows.runs") as sub:
            await node.client().publish(forged)
            async for rec in sub:
                answer = StepFinished.model_validate_json(rec.value)
                break
        assert answer.status == "failed" and "'c'" in (answer.error or "")
        assert "'evil'" in (answer.error or "")
        assert not list(s.object_store.list("workflows/"))
        modules = next(a for a in node.agents if isinstance(a, ModuleAgent))
        assert modules.results is not None and modules.results.count() == 0


async def test_agent_steps_are_placed_from_the_catalog(tmp_path: Path) -> None:
    """A methane step goes to the peer that registered its scene (id and asset href both
    from the catalog); an agent step with data here too, a non-peer's scene, a claimed
    href, and agents that are never placed stay here."""
    peers = {"b": Peer(public_key=KEY, api_url="http://127.0.0.1:9")}
    settings = load_settings(data_dir=tmp_path / "a", node_id="a", http_port=0, peers=peers)
    async with EmbeddedNode(settings, agents=[], serve_http=False) as node:
        s = node.services
        s.catalog.upsert_item(item("mine", 100))
        s.catalog.upsert_item(item("on-b", 5000), owning_node="b")
        s.catalog.upsert_item(item("on-zz", 10**9), owning_node="zz")  # not a peer
        on_b = place_agent_step(s, "methane@1.0.0", {"scene_id": "on-b", "href": "/x/on-b.nc"})
        assert on_b.node == "b" and on_b.held == {"b": 5000}
        file_href = {"scene_id": "on-b", "href": "file:///x/on-b.nc"}
        assert place_agent_step(s, "methane@1.0.0", file_href).node == "b"
        other = {"scene_id": "on-b", "href": "/x/mine.nc"}  # B's id, another file
        assert place_agent_step(s, "methane@1.0.0", other).node == "a"
        zz = {"scene_id": "on-zz", "href": "/x/on-zz.nc"}
        assert place_agent_step(s, "methane@1.0.0", zz).node == "a"
        assert place_agent_step(s, "methane@1.0.0", {"scene_id": 3}).node == "a"
        cube = {
            "modalities": [{"name": "r", "collection": "emit-l1b-rad", "layers": ["x"]}],
            "bbox": [0, 0, 1, 1],
            "start": "2024-01-01T00:00:00Z",
            "end": "2024-12-31T00:00:00Z",
        }
        split = place_agent_step(s, "datacube@1.0.0", cube)  # data on a and b: runs here
        assert split.node == "a" and split.held == {"a": 100, "b": 5000}
        s.catalog.delete_item("emit-l1b-rad", "mine")
        assert place_agent_step(s, "datacube@1.0.0", cube).node == "b"
        scene = {"scene_id": "on-b", "href": "/x/on-b.nc"}
        assert place_agent_step(s, "register@1.0.0", scene).node == "a"


async def test_agent_step_forwards_are_exact_and_refused_inputs_forward_nothing(
    tmp_path: Path,
) -> None:
    """A forwarded agent request's id derives from the step request's (a replay forwards
    the same request); inputs the agent's request model refuses fail the step on this
    node, naming the input, with nothing sent (the peer's address is unreachable); only
    an agent step this node placed elsewhere takes a ``StepFinished`` as its answer."""
    from gravitas.agents.workflows.agent import _forwarded_answer
    from gravitas.agents.workflows.agent_forward import forwarded_id, run_agent_on_peer

    peers = {"b": Peer(public_key=KEY, api_url="http://127.0.0.1:9")}
    settings = load_settings(data_dir=tmp_path / "a", node_id="a", http_port=0, peers=peers)
    step = StepRequested(
        run_id="r",
        step_id="r.a0.ch4",
        module="methane@1.0.0",
        inputs={"scene_id": "on-b", "href": "/x/on-b.nc", "iterations": 10**6},
        node="b",
    )
    assert forwarded_id(step) == forwarded_id(step.model_copy()) != step.event_id
    async with EmbeddedNode(settings, agents=[], serve_http=False) as node:
        answer = run_agent_on_peer(node.services, step)
    assert answer.status == "failed" and answer.served_by == "a"
    assert "inputs refused" in (answer.error or "") and "iterations" in (answer.error or "")
    finished = StepFinished(run_id="r", step_id="r.a0.ch4", module="methane@1.0.0")
    assert _forwarded_answer(finished, {"module": "methane@1.0.0", "node": "b"}, "a")
    assert not _forwarded_answer(finished, {"module": "methane@1.0.0"}, "a")
    assert not _forwarded_answer(finished, {"module": "methane@1.0.0", "node": "a"}, "a")
