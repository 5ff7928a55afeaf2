"""Hostile hrefs through an embedded node with every agent, in every data mode and
asset field: each announcement is dead-lettered with ``HrefRefusedError`` naming the
bad href, and the node's stored state (catalog items and versions, block-store keys and
bytes, object-store keys and bytes) is unchanged. Then the check before each read: a
symlink swapped after registration, a redirect from an allow-listed real HTTP server to
a forbidden one, and a root removed from the settings across a restart."""

from __future__ import annotations

import asyncio
import functools
import http.server
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from gravitas.schemas.events import OnboardingFailed, OnboardRequested, Rejected, SceneAnnounced
from gravitas.schemas.settings import Settings, load_settings
from gravitas.storage.s3server import SeaweedS3
from gravitas.storage.sampledata import fetch
from gravitas.streams.node import EmbeddedNode
from tests.fixtures.state import fingerprint

LANDSAT = "landsat7_series"


def _scene_dir() -> Path:
    return sorted(p for p in fetch(LANDSAT).iterdir() if p.name.startswith("LE7"))[0]


def _when() -> datetime:
    name = _scene_dir().name
    return datetime(int(name[9:13]), 1, 1, tzinfo=UTC) + timedelta(days=int(name[13:16]) - 1)


BBOX = (-106.93, 40.27, -106.90, 40.30)


class Hits(http.server.SimpleHTTPRequestHandler):
    """Serves a folder and counts requests; ``/go-*`` redirect to ``Location`` values."""

    redirects: ClassVar[dict[str, str]] = {}
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        target = self.redirects.get(self.path)
        if target:
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


def _server(root: Path, redirects: dict[str, str]) -> tuple[str, list[str], object]:
    hits: list[str] = []
    handler = type("H", (Hits,), {"redirects": redirects, "hits": hits})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}", hits, httpd


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, object]]:
    """Allowed files (with symlinks), an outside copy, an allowed and a forbidden server."""
    band = next(_scene_dir().glob("*_b3.tif"))
    mask = next(_scene_dir().glob("*_fmask.tif"))
    roots = tmp_path / "roots"
    roots.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    for d in (roots, outside):
        shutil.copy(band, d / "b3.tif")
        shutil.copy(mask, d / "fmask.tif")
    (roots / "link-b3.tif").symlink_to(roots / "b3.tif")
    (roots / "link-mask.tif").symlink_to(roots / "fmask.tif")
    (roots / "out-b3.tif").symlink_to(outside / "b3.tif")
    bad_url, bad_hits, bad_httpd = _server(outside, {})
    good_url, good_hits, good_httpd = _server(
        roots,
        {
            "/go-forbidden.tif": bad_url + "/b3.tif",
            "/go-metadata.tif": "http://169.254.169.254/latest/meta-data/iam/",
            "/go-file.tif": (outside / "b3.tif").as_uri(),
        },
    )
    try:
        yield {
            "tmp": tmp_path, "roots": roots, "outside": outside, "good": good_url,
            "bad": bad_url, "bad_hits": bad_hits, "good_hits": good_hits,
        }  # fmt: skip
    finally:
        for httpd in (good_httpd, bad_httpd):
            httpd.shutdown()  # type: ignore[attr-defined]
            httpd.server_close()  # type: ignore[attr-defined]


def _settings(world: dict[str, object], **extra: object) -> Settings:
    tmp = world["tmp"]
    assert isinstance(tmp, Path)
    values: dict[str, object] = {
        "data_dir": tmp / "node", "http_port": 0, "broker": "memory://",
        "allowed_roots": (world["roots"],),
        "allowed_url_prefixes": (f"{world['good']}/",),
    }  # fmt: skip
    values.update(extra)
    return load_settings(**values)


@pytest.fixture
async def node(world: dict[str, object]) -> AsyncIterator[EmbeddedNode]:
    async with EmbeddedNode(_settings(world), serve_http=False) as n:
        yield n


async def _dead(node: EmbeddedNode) -> dict[str, Rejected]:
    await node.runner.drain()
    out: dict[str, Rejected] = {}

    async def read() -> None:
        async for ev in node.client().subscribe("deadletter", from_beginning=True):
            if isinstance(ev, Rejected):
                out[ev.source_key] = ev

    async def failed() -> None:  # onboarding refusals are answered on onboard.results
        async for ev in node.client().subscribe("onboard.results", from_beginning=True):
            if isinstance(ev, OnboardingFailed):
                out[ev.scene_id] = Rejected.for_payload(
                    b"{}",
                    source_topic="onboard.requests",
                    source_key=ev.scene_id,
                    error_class=ev.error_class,
                    reason=ev.cause,
                    agent="onboarding",
                )

    tasks = [asyncio.create_task(read()), asyncio.create_task(failed())]
    await asyncio.sleep(0.3)
    for task in tasks:
        task.cancel()
    return out


def _scene(mode: str, hrefs: list[str], mask: str | None = None) -> SceneAnnounced:
    return SceneAnnounced(
        scene_id=f"{mode}-{uuid.uuid4().hex[:8]}", collection="hostile", hrefs=hrefs,
        mode=mode, layer="hostile", bbox=BBOX, datetime=_when(), mask_href=mask,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_hostile_hrefs_in_every_mode_and_field_are_dead_lettered_and_change_nothing(
    node: EmbeddedNode, world: dict[str, object]
) -> None:
    roots, good, bad = world["roots"], world["good"], world["bad"]
    assert isinstance(roots, Path)
    data_dir = node.services.data_dir
    ok_file = str(roots / "b3.tif")
    ok_url = f"{good}/b3.tif"
    hostile = [
        "/etc/passwd",
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        f"{roots}/out-b3.tif",  # a symlink pointing out of the root
        str(data_dir / "catalog.sqlite"),  # the node's own state
        f"{bad}/b3.tif",  # a server not on the allow-list
        "http://169.254.169.254/latest/meta-data/",
        "http://127.1:" + str(good).rsplit(":", 1)[1] + "/b3.tif",
        "http://2130706433/b3.tif",
        "http://[::1]:" + str(good).rsplit(":", 1)[1] + "/b3.tif",
        "http://0.0.0.0:" + str(good).rsplit(":", 1)[1] + "/b3.tif",
        "http://10.0.0.1/b3.tif",
        "http://192.168.0.1/b3.tif",
        f"{good}.evil.net/b3.tif",
        str(good).replace("http://", "http://x@") + "/b3.tif",
        "s3://someone-elses-bucket/b3.tif",
    ]
    cases: list[tuple[SceneAnnounced, str]] = []
    for mode in ("direct", "external", "lazy"):
        for bad_href in hostile:
            cases.append((_scene(mode, [bad_href]), bad_href))
        fine = ok_file if mode == "direct" else ok_url
        cases.append((_scene(mode, [fine], mask="/etc/passwd"), "/etc/passwd"))
        cases.append((_scene(mode, [fine, "http://169.254.169.254/x"]), "http://169.254.169.254/x"))
    before = fingerprint(node.services)
    client = node.client()
    for scene, _bad in cases:
        await client.publish(scene)
    dead = await _dead(node)
    for scene, bad_href in cases:
        rejected = dead[scene.scene_id]
        assert rejected.error_class == "HrefRefusedError", (bad_href, rejected.reason)
        assert repr(bad_href) in rejected.reason, (bad_href, rejected.reason)
    assert fingerprint(node.services) == before
    assert world["bad_hits"] == [] and world["good_hits"] == []  # nothing was fetched
    print(f"hostile announcements refused: {len(cases)}")


async def test_every_read_checks_again_a_swapped_symlink(
    node: EmbeddedNode, world: dict[str, object]
) -> None:
    roots, outside = world["roots"], world["outside"]
    assert isinstance(roots, Path) and isinstance(outside, Path)
    scene = _scene("external", [str(roots / "link-b3.tif")], mask=str(roots / "link-mask.tif"))
    await node.client().publish(scene)
    await node.runner.drain()
    item = node.services.catalog.get_item("hostile", scene.scene_id)  # admitted on arrival
    (roots / "link-mask.tif").unlink()
    (roots / "link-mask.tif").symlink_to(outside / "fmask.tif")  # now points out
    before = fingerprint(node.services)
    ask = OnboardRequested(
        scene_id=scene.scene_id, collection="hostile", item_id=item["id"], requested_by="r-swap"
    )
    await node.client().publish(ask)
    rejected = (await _dead(node))[scene.scene_id]
    assert rejected.error_class == "HrefRefusedError"
    assert repr(str(roots / "link-mask.tif")) in rejected.reason
    assert str(outside / "fmask.tif") in rejected.reason  # where it resolves to
    assert fingerprint(node.services) == before
    assert not list(node.services.block_store.scan_keys(b"", b"\xff" * 64))


async def test_a_redirect_to_a_forbidden_server_is_refused_before_it_is_followed(
    node: EmbeddedNode, world: dict[str, object]
) -> None:
    good = world["good"]
    scenes = {
        f"{good}/go-forbidden.tif": str(world["bad"]) + "/b3.tif",
        f"{good}/go-metadata.tif": "http://169.254.169.254/latest/meta-data/iam/",
        f"{good}/go-file.tif": "file://",
    }
    made = []
    for href in scenes:
        scene = _scene("lazy", [href])  # the first hop is allowed: registered
        await node.client().publish(scene)
        made.append(scene)
    await node.runner.drain()
    before = fingerprint(node.services)
    for scene in made:
        await node.client().publish(
            OnboardRequested(
                scene_id=scene.scene_id,
                collection="hostile",
                item_id=scene.scene_id,
                requested_by="r-redirect",
            )
        )
    dead = await _dead(node)
    for scene, (_href, target) in zip(made, scenes.items(), strict=True):
        rejected = dead[scene.scene_id]
        assert rejected.error_class == "HrefRefusedError", rejected.reason
        assert target in rejected.reason, rejected.reason
    assert world["bad_hits"] == []  # the forbidden server never saw a request
    assert fingerprint(node.services) == before  # nothing imported, nothing indexed


async def test_a_root_removed_from_the_settings_is_refused_at_the_next_read(
    world: dict[str, object],
) -> None:
    roots = world["roots"]
    assert isinstance(roots, Path)
    scene = _scene("lazy", [str(roots / "b3.tif")])
    async with EmbeddedNode(_settings(world), serve_http=False) as n:
        await n.client().publish(scene)
        await n.runner.drain()
        assert n.services.catalog.get_item("hostile", scene.scene_id)
    narrower = _settings(world, allowed_roots=(world["outside"],))
    async with EmbeddedNode(narrower, serve_http=False) as n:
        before = fingerprint(n.services)
        await n.client().publish(
            OnboardRequested(
                scene_id=scene.scene_id,
                collection="hostile",
                item_id=scene.scene_id,
                requested_by="r-narrow",
            )
        )
        rejected = (await _dead(n))[scene.scene_id]
        assert rejected.error_class == "HrefRefusedError"
        assert repr(str(roots / "b3.tif")) in rejected.reason
        assert "outside the allowed roots" in rejected.reason
        assert fingerprint(n.services) == before


@pytest.mark.s3
async def test_lazy_onboarding_on_s3_reads_its_own_bucket_only(
    world: dict[str, object], s3_server: SeaweedS3
) -> None:
    """The managed copy of a lazy scene lives in the S3 object store and its s3:// href
    is admitted for the read; another bucket or prefix is refused at arrival."""
    roots = world["roots"]
    assert isinstance(roots, Path)
    prefix = f"node-{uuid.uuid4().hex[:8]}"
    settings = _settings(
        world,
        object_store=f"s3://gravitas-objects/{prefix}?endpoint={s3_server.endpoint}",
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
    )
    async with EmbeddedNode(settings, serve_http=False) as n:
        scene = _scene("lazy", [str(roots / "b3.tif")])
        await n.client().publish(scene)
        await n.runner.drain()
        await n.client().publish(
            OnboardRequested(
                scene_id=scene.scene_id,
                collection="hostile",
                item_id=scene.scene_id,
                requested_by="r-s3",
            )
        )
        await n.runner.drain()
        item = n.services.catalog.get_item("hostile", scene.scene_id)
        assert item["properties"]["gravitas:onboarded"] is True
        (href,) = [a["href"] for a in item["assets"].values() if a.get("roles") == ["data"]]
        assert href.startswith(f"s3://gravitas-objects/{prefix}/assets/hostile/")
        before = fingerprint(n.services)
        foreign = [
            href.replace(prefix, "node-other"),
            href.replace("gravitas-objects", "gravitas-objects2"),
        ]
        scenes = [_scene("lazy", [h]) for h in foreign]
        for s in scenes:
            await n.client().publish(s)
        dead = await _dead(n)
        for s, h in zip(scenes, foreign, strict=True):
            assert dead[s.scene_id].error_class == "HrefRefusedError"
            assert repr(h) in dead[s.scene_id].reason
        assert fingerprint(n.services) == before
