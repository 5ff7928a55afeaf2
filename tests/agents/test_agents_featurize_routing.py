"""A Featurize request for layers another node owns is sent to that node (a configured
peer, signed) and only the answer comes back: two embedded nodes, A holding the real
Stage IV rain, B knowing A's items only through A's signed registrations."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from gravitas.agents.signing import NodeIdentity, generate_seed
from gravitas.schemas.codec import decode
from gravitas.schemas.events import FeatureResult, Featurize, ItemRegistered
from gravitas.schemas.settings import load_settings
from gravitas.storage.pixels.read import read_layer
from gravitas.streams.node import EmbeddedNode
from tests.agents.test_agents_pixels import FLORENCE, WINDOW, stageiv_event


def _registrations(node: EmbeddedNode) -> list[ItemRegistered]:
    name = node.topology.physical("stac.registrations")
    out = []
    for p in range(node.bus.partitions(name)):
        for rec in node.bus.read(name, p, 0, 1_000_000):
            ev = decode(rec.value, node.topology.events("stac.registrations"))
            if isinstance(ev, ItemRegistered):
                out.append(ev)
    return out


async def test_featurize_is_routed_to_the_owner_node(tmp_path: Path) -> None:
    seed_a, seed_b = generate_seed(), generate_seed()
    key_b = NodeIdentity.load(load_settings(node_id="b", signing_key=seed_b)).public_key
    settings_a = load_settings(
        data_dir=tmp_path / "a", node_id="a", http_port=0, signing_key=seed_a,
        peers={"b": {"public_key": key_b, "api_url": "http://127.0.0.1:9"}},
    )  # fmt: skip
    async with EmbeddedNode(settings_a) as node_a:
        await node_a.client().publish(stageiv_event())
        await node_a.runner.drain(timeout=300)
        regs = _registrations(node_a)
        assert regs
        settings_b = load_settings(
            data_dir=tmp_path / "b", node_id="b", http_port=0, signing_key=seed_b,
            peers={"a": {"public_key": node_a.services.identity.public_key,
                         "api_url": node_a.edge_url}},
        )  # fmt: skip
        async with EmbeddedNode(settings_b, serve_http=False) as node_b:
            for reg in regs:  # what the shared federation topic carries
                await node_b.client().publish(reg, "stac.registrations")
            await node_b.runner.drain(timeout=60)
            assert not node_b.services.layers.list()  # B holds no pixels
            req = Featurize(
                request_id=f"route-{uuid.uuid4().hex[:8]}",
                layers={"rain": "stageiv"},
                expression="rain",
                reducers=["max", "mean"],
                bbox=FLORENCE,
                time=WINDOW,
                over="space-time",
            )
            reply = await node_b.client().request(req, "discovery.results", 300)
            assert isinstance(reply, FeatureResult) and reply.status == "ok", reply.error
            assert reply.served_by == "a" and reply.request_id == req.request_id
            s = node_a.services
            v = read_layer(s.block_store, s.layers, "stageiv", FLORENCE,
                           WINDOW.start, WINDOW.end).values.astype(np.float64)  # fmt: skip
            assert reply.values["all"]["max"] == pytest.approx(np.nanmax(v))
            assert reply.values["all"]["mean"] == pytest.approx(np.nanmean(v), rel=1e-9)

            # a layer nobody owns is answered as failed by B, naming it
            bad = req.model_copy(update={"request_id": "route-bad", "layers": {"rain": "nope"}})
            failed = await node_b.client().request(bad, "discovery.results", 60)
            assert isinstance(failed, FeatureResult) and failed.status == "failed"
            assert failed.served_by == "b" and "nope" in (failed.error or "")
