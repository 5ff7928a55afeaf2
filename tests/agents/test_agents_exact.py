"""One writer per block and exact replays, on an embedded node with every agent.

Two overlapping tiles of one layer and time (cut from a real Landsat 7 band) end in the
same block bytes whichever arrives first or whether they race; replaying every input
topic (the same records again) and events published without an id leave the blocks,
the catalog (versions, ``registered_at``) and the object store byte-identical.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson

from gravitas.schemas.events import (
    ItemRegistered,
    PixelSearch,
    Predicate,
    SceneAnnounced,
    SearchResult,
    TimeRange,
)
from gravitas.schemas.settings import load_settings
from gravitas.storage.keys import encode_key
from gravitas.streams.node import EmbeddedNode
from tests.fixtures.state import blocks_digest, state_parts
from tests.fixtures.tiles import band3, fetch, landsat_scene_dirs, overlapping_tiles

WHEN = datetime(2008, 4, 27, tzinfo=UTC)
LAYER = "tiles"


def _settings(root: Path) -> object:
    return load_settings(
        data_dir=root,
        http_port=0,
        broker="memory://",
        allowed_roots=(fetch("landsat7_series"), root.parent),
    )


def _tile_event(path: Path, name: str) -> SceneAnnounced:
    return SceneAnnounced(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"test-exact:{name}"),
        scene_id=f"tile-{name}",
        collection="tiles",
        hrefs=[str(path)],
        layer=LAYER,
        mode="direct",
        datetime=WHEN,
    )


def _tiles(tmp_path: Path) -> tuple[Path, Path]:
    return overlapping_tiles(band3(landsat_scene_dirs()[0]), tmp_path / "in", "ls7")


async def _ingest(root: Path, events: Sequence[SceneAnnounced], *, race: bool) -> EmbeddedNode:
    node = EmbeddedNode(_settings(root), serve_http=False)  # type: ignore[arg-type]
    await node.start()
    for ev in events:
        await node.client().publish(ev)
        if not race:
            await node.runner.drain(timeout=120)
    await node.runner.drain(timeout=120)
    return node


def _blocks(node: EmbeddedNode) -> dict[bytes, np.ndarray]:
    store, info = node.services.block_store, node.services.layers.get(LAYER)
    lo = encode_key(LAYER, info.native_level, 0, 0)
    hi = encode_key(LAYER, info.native_level, (1 << 58) - 1, 2**40)
    return {k: b.array for k, b in store.scan(lo, hi)}


async def test_overlapping_tiles_merge_to_the_same_bytes_in_any_order(tmp_path: Path) -> None:
    west, east = _tiles(tmp_path)
    w, e = _tile_event(west, "west"), _tile_event(east, "east")
    digests = []
    for name, events, race in (
        ("we", [w, e], False),
        ("ew", [e, w], False),
        ("race", [w, e], True),
    ):
        node = await _ingest(tmp_path / name, events, race=race)
        try:
            digests.append(blocks_digest(node.services.block_store))
            if name == "we":
                merged = _blocks(node)
        finally:
            await node.stop()
    assert digests[0] == digests[1] == digests[2], digests
    assert digests[0][1] > 0

    singles = []
    for name, ev in (("west-only", w), ("east-only", e)):
        node = await _ingest(tmp_path / name, [ev], race=False)
        try:
            singles.append(_blocks(node))
            assert not list(  # staged blocks are gone once merged
                node.services.block_store.scan_keys(
                    encode_key(f"staged:{ev.scene_id}:{LAYER}", 1, 0, 0),
                    encode_key(f"staged:{ev.scene_id}:{LAYER}", 29, 0, 2**40),
                )
            )
        finally:
            await node.stop()
    overlap = 0
    for key, arr in merged.items():
        a, b = singles[0].get(key), singles[1].get(key)
        va = _valid(a) if a is not None else np.zeros(arr.shape, bool)
        vb = _valid(b) if b is not None else np.zeros(arr.shape, bool)
        assert np.array_equal(_valid(arr), va | vb)  # the union of both tiles' pixels
        both = va & vb
        overlap += int(both.sum())
        if a is not None and b is not None and both.any():
            assert np.array_equal(arr[both], np.maximum(a, b)[both])  # the larger value
            assert (b[both] > a[both]).any()  # (the east tile's values are larger)
    assert overlap > 0


def _valid(a: np.ndarray) -> np.ndarray:
    return ~np.isnan(a) if a.dtype.kind == "f" else a != -9999


def _inputs(node: EmbeddedNode) -> list[tuple[str, bytes | None, bytes]]:
    out = []
    for topic in ("scenes.new", "onboard.requests", "pixels.indexed"):
        name = node.topology.physical(topic)
        for p in range(node.bus.partitions(name)):
            for rec in node.bus.read(name, p, 0, 1_000_000):
                out.append((topic, rec.key, rec.value))
    return out


def _state(node: EmbeddedNode) -> dict[str, object]:
    s = node.services
    return state_parts(s.block_store, s.catalog, s.object_store)


def _bbox(path: Path) -> tuple[float, float, float, float]:
    from gravitas.storage.catalog.items import item_from_file

    item = item_from_file(path, "probe", "probe", checksum=False)
    w, s, e, n = item.bbox[:4]  # type: ignore[index]
    return (w, s, e, n)


async def _search(node: EmbeddedNode, layer: str, bbox: tuple[float, ...]) -> SearchResult:
    event = PixelSearch(
        request_id=f"q-{uuid.uuid4().hex[:8]}",
        layer=layer,
        predicate=Predicate(op=">", value=0),
        bbox=bbox,
        time=TimeRange(
            start=datetime(2008, 1, 1, tzinfo=UTC), end=datetime(2009, 1, 1, tzinfo=UTC)
        ),
    )
    reply = await node.client().request(event, timeout=120)
    assert isinstance(reply, SearchResult)
    return reply


async def _registrations(node: EmbeddedNode) -> list[ItemRegistered]:
    name = node.topology.physical("stac.registrations")
    out = []
    for p in range(node.bus.partitions(name)):
        for rec in node.bus.read(name, p, 0, 1_000_000):
            ev = ItemRegistered.model_validate_json(rec.value)
            out.append(ev)
    return out


async def test_replaying_every_input_topic_changes_no_byte(tmp_path: Path) -> None:
    west, east = _tiles(tmp_path)
    lazy_src = band3(landsat_scene_dirs()[1])
    lazy = SceneAnnounced(
        scene_id="ls7-lazy",
        collection="landsat7-sr",
        hrefs=[str(lazy_src)],
        layer="ls7_lazy",
        mode="lazy",
        datetime=datetime(2008, 5, 29, tzinfo=UTC),
        bbox=_bbox(lazy_src),
    )
    node = await _ingest(
        tmp_path / "n", [_tile_event(west, "west"), _tile_event(east, "east"), lazy], race=False
    )
    try:
        result = await _search(node, "ls7_lazy", _bbox(lazy_src))  # onboards the lazy scene
        assert result.status == "ok", result.error
        await node.runner.drain(timeout=120)
        before = _state(node)
        versions = {(r.item_id, r.version) for r in await _registrations(node)}
        assert ("ls7-lazy", 2) in versions

        for topic, key, value in _inputs(node):  # the same records again, twice
            for _ in range(2):
                await node.transport.publish(topic, key, value)
        await node.runner.drain(timeout=120)
        assert _state(node) == before
        assert {(r.item_id, r.version) for r in await _registrations(node)} == versions
    finally:
        await node.stop()


async def test_an_event_without_an_id_is_the_same_event_each_time(tmp_path: Path) -> None:
    west, _east = _tiles(tmp_path)
    node = await _ingest(tmp_path / "n", [], race=False)
    try:
        raw = orjson.loads(_tile_event(west, "west").model_dump_json())
        del raw["event_id"]
        value = orjson.dumps(raw)
        await node.transport.publish("scenes.new", b"tile-west", value)
        await node.runner.drain(timeout=120)
        before = _state(node)
        await node.transport.publish("scenes.new", b"tile-west", value)
        await node.runner.drain(timeout=120)
        assert _state(node) == before
        regs = await _registrations(node)
        # registered, then flagged onboarded by the overview agent; the replay repeats both
        assert sorted(r.version for r in regs) == [1, 1, 2, 2]
        first = {r.event_id: r.item for r in regs[:2]}
        again = {r.event_id: r.item for r in regs[2:]}
        assert first == again  # the same derived ids and items: duplicates
    finally:
        await node.stop()


async def test_a_request_parked_on_a_direct_import_in_flight_resumes_once_merged(
    tmp_path: Path,
) -> None:
    """A search that finds a Direct Import registered but not yet merged parks on it; its
    onboarding stages the imported copy again. Whichever staging completes its pyramids
    first flags the item (version 2, once); the request is answered ``OnboardingDone`` by
    the completion of its own round, and a replay repeats exactly those outputs."""
    import logging

    from gravitas.agents.base import AgentContext
    from gravitas.agents.ingest import accept_scene
    from gravitas.agents.onboarding import onboard
    from gravitas.agents.pyramids import build
    from gravitas.agents.services import NodeServices
    from gravitas.schemas.events import BlocksIndexed, OnboardingDone, OnboardRequested

    west, _east = _tiles(tmp_path)
    scene = _tile_event(west, "west")
    services = NodeServices(_settings(tmp_path / "n"))  # type: ignore[arg-type]

    async def no_emit(topic: str, event: object) -> None:
        return None

    ctx = AgentContext("n", services, no_emit, logging.LoggerAdapter(logging.getLogger("t")))
    try:
        ingest = accept_scene(scene, services)
        staged = [e.event for e in ingest if isinstance(e.event, BlocksIndexed)]
        v1 = next(e.event for e in ingest if isinstance(e.event, ItemRegistered))
        assert staged and v1.version == 1 and not v1.item["properties"]["gravitas:onboarded"]
        request = OnboardRequested(
            scene_id=scene.scene_id, collection="tiles", item_id=scene.scene_id, requested_by="q-1"
        )
        again = [e.event for e in onboard(ctx, request)]  # the request's round
        assert [type(e) for e in again] == [BlocksIndexed] * len(staged)
        assert all(e.requested_by == "q-1" and e.round_id == str(request.event_id) for e in again)

        outs = [build(services, e) for e in again]  # the request's round completes first
        last = [e.event for e in outs[-1]]
        flagged = [e for e in last if isinstance(e, ItemRegistered)]
        done = [e for e in last if isinstance(e, OnboardingDone)]
        assert [r.version for r in flagged] == [2] and flagged[0].item["properties"][
            "gravitas:onboarded"
        ]
        assert [(d.requested_by, d.item_id) for d in done] == [("q-1", scene.scene_id)]
        assert not any(
            isinstance(e.event, OnboardingDone | ItemRegistered) for o in outs[:-1] for e in o
        )
        before = _state_of(services)

        ingest_outs = [build(services, e) for e in staged]  # the import's own round: no flag
        assert not any(
            isinstance(e.event, ItemRegistered | OnboardingDone) for o in ingest_outs for e in o
        )
        replay = [e.event for e in build(services, again[-1])]  # the completing event again
        assert [_content(e) for e in replay] == [_content(e) for e in last]
        assert _state_of(services) == before  # same bytes, versions, registered_at
        item = services.catalog.get_item("tiles", scene.scene_id)
        assert item["properties"]["gravitas:version"] == 2
    finally:
        services.close()


def _content(event: object) -> dict[str, object]:
    """An output without the ids and times the runner stamps (derived from the input's)
    and the signature over them."""
    skip = {"event_id", "occurred_at", "node_id", "signature"}
    return {k: v for k, v in event.model_dump(mode="json").items() if k not in skip}  # type: ignore[attr-defined]


def _state_of(services: object) -> dict[str, object]:
    s = services
    return state_parts(s.block_store, s.catalog, s.object_store)  # type: ignore[attr-defined]
