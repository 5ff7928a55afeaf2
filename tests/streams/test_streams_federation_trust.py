"""Federation messages under attack, on real embedded nodes: forged, unsigned, altered,
unknown-key and non-owner registrations and retractions are dead-lettered with their
reason and change nothing stored; replayed old registrations never roll back a newer
version or bring back a retracted item; requests are forwarded only to a configured
peer's URL (never one taken from a message), signed, and a peer's edge refuses
unsigned, unknown-key and stale forwarded requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gravitas.agents.routing import forward
from gravitas.agents.signing import NodeIdentity, UnknownPeerError, generate_seed
from gravitas.schemas.codec import decode, encode
from gravitas.schemas.events import (
    ItemRegistered,
    ItemRetracted,
    PixelSearch,
    Predicate,
    Rejected,
    SearchResult,
    TimeRange,
)
from gravitas.schemas.settings import load_settings
from gravitas.streams.node import EmbeddedNode
from tests.fixtures.state import catalog_state, fingerprint

SEEDS = {name: generate_seed() for name in ("a", "c", "mallory")}


def identity(name: str) -> NodeIdentity:
    return NodeIdentity.load(load_settings(node_id=name, signing_key=SEEDS[name]))


def item(item_id: str, version: int, note: str = "v") -> dict[str, Any]:
    """A STAC item as its owner registers it (``gravitas:version`` in its properties)."""
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": "shared",
        "geometry": {"type": "Point", "coordinates": [10.0, 50.0]},
        "bbox": [10.0, 50.0, 10.0, 50.0],
        "properties": {
            "datetime": "2024-05-01T00:00:00Z",
            "note": note,
            "gravitas:version": version,
        },
        "links": [],
        "assets": {},
    }


def registration(owner: str, item_id: str, version: int, note: str = "v") -> ItemRegistered:
    return ItemRegistered(
        item_id=item_id,
        collection="shared",
        item=item(item_id, version, note),
        owning_node=owner,
        api_url=f"http://{owner}.example:8765",
        version=version,
    )


def search(request_id: str) -> PixelSearch:
    return PixelSearch(
        request_id=request_id,
        layer="no_such_layer",
        predicate=Predicate(op=">", value=0),
        bbox=(10.0, 50.0, 10.1, 50.1),
        time=TimeRange(start="2024-01-01T00:00:00Z", end="2024-01-02T00:00:00Z"),
    )


def retraction(owner: str, item_id: str, version: int) -> ItemRetracted:
    return ItemRetracted(item_id=item_id, collection="shared", owning_node=owner, version=version)


class Federated:
    def __init__(self, node: EmbeddedNode) -> None:
        self.node = node

    async def send(self, event: ItemRegistered | ItemRetracted) -> None:
        await self.node.client().publish(event, "stac.registrations")
        await self.node.runner.drain(timeout=60)

    def rejected(self) -> list[Rejected]:
        name = self.node.topology.physical("deadletter")
        out = []
        for rec in self.node.bus.read(name, 0, 0, 1_000_000):
            ev = decode(rec.value, [Rejected])
            assert isinstance(ev, Rejected)
            out.append(ev)
        return out

    def versions(self) -> dict[str, tuple[str, int]]:
        return {row[1]: (row[2], row[3]) for row in catalog_state(self.node.services)}


@pytest.fixture
async def node_b(tmp_path: Path) -> AsyncIterator[Federated]:
    peers = {
        name: {"public_key": identity(name).public_key, "api_url": f"http://{name}.peer:8765"}
        for name in ("a", "c")
    }
    settings = load_settings(
        data_dir=tmp_path / "b", node_id="b", http_port=0, peers=peers, broker="memory://"
    )
    async with EmbeddedNode(settings, serve_http=False) as node:
        yield Federated(node)


async def test_forged_registrations_are_dead_lettered_and_change_nothing(
    node_b: Federated,
) -> None:
    a, c, mallory = identity("a"), identity("c"), identity("mallory")
    await node_b.send(a.sign(registration("a", "s1", 1)))
    assert node_b.versions() == {"s1": ("a", 1)}
    before = fingerprint(node_b.node.services)
    altered = a.sign(registration("a", "s1", 5)).model_copy(
        update={"api_url": "http://attacker.example"}
    )
    hostile: list[tuple[ItemRegistered | ItemRetracted, str]] = [
        (registration("a", "s1", 9), "is unsigned"),
        (retraction("a", "s1", 9), "is unsigned"),
        (mallory.sign(registration("a", "s1", 9)), "does not verify"),
        (mallory.sign(retraction("a", "s1", 9)), "does not verify"),
        (altered, "does not verify"),
        (registration("a", "s1", 9).model_copy(update={"signature": "%%%"}), "does not verify"),
        (mallory.sign(registration("mallory", "s1", 9)), "'mallory' is not a configured peer"),
        (mallory.sign(registration("mallory", "m1", 1)), "'mallory' is not a configured peer"),
        (mallory.sign(registration("b", "b1", 1)), "does not verify"),  # posing as this node
        (c.sign(registration("c", "s1", 9)), "owned by node 'a', only it may change it"),
        (c.sign(retraction("c", "s1", 9)), "owned by node 'a', only it may change it"),
    ]
    for number, (event, reason) in enumerate(hostile, start=1):
        await node_b.send(event)
        rejected = node_b.rejected()
        assert len(rejected) == number, (reason, rejected)
        assert reason in rejected[-1].reason, rejected[-1].reason
        assert rejected[-1].source_event_id == str(event.event_id)
        assert rejected[-1].agent == "registrar"
        assert fingerprint(node_b.node.services) == before, reason
    info = node_b.node.services.nodes.get("a")
    assert info is not None and info.api_url == "http://a.example:8765"
    assert node_b.node.services.nodes.get("mallory") is None


async def test_replayed_registrations_never_roll_back(node_b: Federated) -> None:
    a = identity("a")
    v1, v2 = a.sign(registration("a", "s2", 1, "one")), a.sign(registration("a", "s2", 2, "two"))
    await node_b.send(v1)
    await node_b.send(v2)
    await node_b.send(v1)  # an old signed registration, re-sent
    stored = node_b.node.services.catalog.get_item("shared", "s2")
    assert node_b.versions() == {"s2": ("a", 2)} and stored["properties"]["note"] == "two"
    v3 = a.sign(retraction("a", "s2", 3))
    await node_b.send(v3)
    assert node_b.versions() == {}
    gone = fingerprint(node_b.node.services)
    for old in (v1, v2, v3, v2):  # replays after the retraction
        await node_b.send(old)
        assert node_b.versions() == {} and fingerprint(node_b.node.services) == gone
    v4 = a.sign(registration("a", "s2", 4, "four"))  # the owner may bring it back
    await node_b.send(v4)
    assert node_b.versions() == {"s2": ("a", 4)}
    assert node_b.rejected() == []


async def test_requests_go_only_to_configured_peers_signed(tmp_path: Path) -> None:
    seed_a, seed_b = generate_seed(), generate_seed()
    key_b = NodeIdentity.load(load_settings(node_id="b", signing_key=seed_b)).public_key
    settings_a = load_settings(
        data_dir=tmp_path / "a",
        node_id="a",
        http_port=0,
        signing_key=seed_a,
        peers={"b": {"public_key": key_b, "api_url": "http://127.0.0.1:9"}},
    )
    async with EmbeddedNode(settings_a) as node_a:
        key_a = node_a.services.identity.public_key
        settings_b = load_settings(
            data_dir=tmp_path / "b",
            node_id="b",
            http_port=0,
            signing_key=seed_b,
            peers={"a": {"public_key": key_a, "api_url": node_a.edge_url}},
        )
        async with EmbeddedNode(settings_b, serve_http=False) as node_b:
            services = node_b.services
            # a registration's api_url is not where requests go
            services.nodes.seen("a", "http://127.0.0.1:9/attacker", "", time.time())
            reply = await asyncio.to_thread(
                forward, services, "a", "requests.discovery", search("fwd-1"), [SearchResult], 30.0
            )
            assert isinstance(reply, SearchResult) and reply.served_by == "a"
            assert reply.request_id == "fwd-1" and "no_such_layer" in (reply.error or "")
            services.nodes.seen("mallory", node_a.edge_url or "", "", time.time())
            with pytest.raises(UnknownPeerError, match=r"'mallory' .* not a configured peer"):
                forward(services, "mallory", "requests.discovery", search("fwd-2"), [SearchResult])

        # a's edge: unsigned, unknown-key, altered and stale forwarded requests are refused
        body = encode(search("fwd-3"))
        url = f"{node_a.edge_url}/rpc/requests.discovery"
        mallory = NodeIdentity.load(load_settings(node_id="b", signing_key=generate_seed()))
        b = NodeIdentity.load(load_settings(node_id="b", signing_key=seed_b))
        cases = [
            ({}, "needs the node's token"),
            (mallory.sign_request("/rpc/requests.discovery", body), "does not verify"),
            (b.sign_request("/rpc/requests.discovery", b"{}"), "does not verify"),
            (b.sign_request("/rpc/discovery.results", body), "does not verify"),
            (
                b.sign_request("/rpc/requests.discovery", body, now=time.time() - 3600),
                "off this node's clock",
            ),
            (
                {**b.sign_request("/rpc/requests.discovery", body), "X-Gravitas-Node": "mallory"},
                "not a configured peer",
            ),
        ]
        async with httpx.AsyncClient(timeout=30) as http:
            for headers, reason in cases:
                resp = await http.post(
                    url, content=body, headers={**headers, "Content-Type": "application/json"}
                )
                assert resp.status_code == 401, resp.text
                assert reason in resp.text, resp.text
            good = await http.post(
                url,
                content=body,
                headers={
                    **b.sign_request("/rpc/requests.discovery", body),
                    "Content-Type": "application/json",
                },
            )
            assert good.status_code == 200 and good.json()["request_id"] == "fwd-3"


async def test_workers_of_this_node_sign_with_its_key_under_their_own_ids(
    node_b: Federated,
) -> None:
    own_key = node_b.node.services.identity.key
    worker = NodeIdentity("b-worker-2", own_key)  # same data dir, its own GRAVITAS_NODE_ID
    await node_b.send(worker.sign(registration("b-worker-2", "w-item", 1)))
    assert node_b.versions() == {"w-item": ("b-worker-2", 1)}
    assert node_b.rejected() == []


async def test_stac_transactions_cannot_change_another_nodes_item(tmp_path: Path) -> None:
    a = identity("a")
    settings = load_settings(
        data_dir=tmp_path / "b",
        node_id="b",
        http_port=0,
        peers={"a": {"public_key": a.public_key, "api_url": "http://a.peer:8765"}},
    )
    async with EmbeddedNode(settings) as node:
        b = Federated(node)
        await b.send(a.sign(registration("a", "s9", 3)))
        before = fingerprint(node.services)
        token = (settings.data_dir / "api_token").read_text().strip()
        url = f"{node.edge_url}/stac/collections/shared/items/s9"
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
            put = await http.put(url, json=item("s9", 4, "hijacked"))
            gone = await http.delete(url)
        for resp in (put, gone):
            assert resp.status_code == 400, resp.text
            assert "owned by node 'a'; only it may change it" in resp.text
        assert fingerprint(node.services) == before
        assert b.versions() == {"s9": ("a", 3)}
        registrations = node.topology.physical("stac.registrations")
        published = [
            rec
            for p in range(node.bus.partitions(registrations))
            for rec in node.bus.read(registrations, p, 0, 1000)
        ]
        assert len(published) == 1  # only a's registration; nothing published by b
