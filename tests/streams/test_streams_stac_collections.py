"""Collections that appear and grow as scenes are ingested, on a live node (memory runner,
the ingest agent, scenes published through the edge) over both catalog backends (SQLite
and PostgreSQL + pgstac): extents, summaries, ``item_assets``, assets named by band with
roles and band metadata, hrefs served by the node with range requests, pystac-client
searches, schema validation, and clean 404s for unknown collections."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pystac_client import Client

from gravitas.schemas.events import SceneAnnounced
from gravitas.storage.sampledata import fetch
from gravitas.streams.node import EmbeddedNode
from gravitas.streams.registry import select_agents
from tests.fixtures.stac_api import offline_schemas, running_node, schema_dir

COLLECTION = "landsat-7"
SCENES = 3


def _scenes() -> list[Path]:
    return sorted(p for p in fetch("landsat7_series").iterdir() if p.name.startswith("LE7"))[
        :SCENES
    ]


def _when(scene: Path) -> datetime:
    year, doy = int(scene.name[9:13]), int(scene.name[13:16])
    return datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=doy - 1)


def _announce(scene: Path) -> SceneAnnounced:
    return SceneAnnounced(
        scene_id=scene.name,
        collection=COLLECTION,
        hrefs=[str(scene / f"{scene.name}_{b}.tif") for b in ("b3", "b4", "b5")],
        mask_href=str(scene / f"{scene.name}_fmask.tif"),
        layer="ls7",
        mode="direct",
    )


def _publish(node: EmbeddedNode, events: list[SceneAnnounced]) -> None:
    body = b"\n".join(e.model_dump_json().encode() for e in events)
    token = (node.settings.data_dir / "api_token").read_text().strip()  # made on first start
    r = httpx.post(
        f"{node.edge_url}/topics/scenes.new/events",
        content=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text


def _wait_items(node: EmbeddedNode, n: int, timeout: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    page: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = httpx.get(f"{node.edge_url}/stac/collections/{COLLECTION}/items?limit=50")
        if r.status_code == 200:
            page = r.json()
            if len(page["features"]) >= n:  # pgstac's numberMatched may be an estimate
                return page
        time.sleep(0.3)
    raise AssertionError(f"{n} items did not arrive: {page}")


@pytest.fixture(scope="module", params=["sqlite", "pgstac"])
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedNode]:
    extra: dict[str, object] = {}
    if request.param == "pgstac":
        from tests.fixtures.pgstac import fresh_pgstac_dsn

        extra["catalog"] = fresh_pgstac_dsn(request.getfixturevalue("pg_cluster"))
    data = tmp_path_factory.mktemp("collections")
    with running_node(
        data,
        node_id="coll",
        agents=select_agents(["ingest"]),
        allowed_roots=(fetch("landsat7_series"), data),
        **extra,
    ) as n:
        _publish(n, [_announce(s) for s in _scenes()])
        _wait_items(n, SCENES)
        yield n


def _get(node: EmbeddedNode, path: str) -> Any:
    r = httpx.get(f"{node.edge_url}/stac{path}")
    assert r.status_code == 200, r.text
    return r.json()


def test_the_collection_appears_with_extents_covering_its_items(node: EmbeddedNode) -> None:
    listed = _get(node, "/collections")["collections"]  # the README's /stac/collections
    assert [c["id"] for c in listed] == [COLLECTION]
    coll = _get(node, f"/collections/{COLLECTION}")
    items = _get(node, f"/collections/{COLLECTION}/items")["features"]
    assert len(items) == SCENES
    boxes = [it["bbox"] for it in items]
    union = [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]
    assert coll["extent"]["spatial"]["bbox"] == [pytest.approx(union)]
    times = sorted(_when(s) for s in _scenes())
    start, end = coll["extent"]["temporal"]["interval"][0]
    assert (start, end) == (
        times[0].strftime("%Y-%m-%dT%H:%M:%SZ"),
        times[-1].strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    assert coll["stac_version"] == "1.1.0" and all(i["stac_version"] == "1.1.0" for i in items)


def test_summaries_and_item_assets_describe_the_bands(node: EmbeddedNode) -> None:
    coll = _get(node, f"/collections/{COLLECTION}")
    summaries = coll["summaries"]
    assert [b["name"] for b in summaries["eo:bands"]] == ["b3", "b4", "b5"]
    assert [b["common_name"] for b in summaries["eo:bands"]] == ["red", "nir08", "swir16"]
    assert summaries["gsd"] == [30.0]
    assert summaries["platform"] == ["landsat-7"] and summaries["instruments"] == ["etm+"]
    assert len(summaries["proj:code"]) == 1 and summaries["proj:code"][0].startswith("EPSG:")
    assets = coll["item_assets"]
    assert sorted(assets) == ["b3", "b4", "b5", "mask"]
    assert assets["b4"]["roles"] == ["data"] and assets["mask"]["roles"] == ["mask"]
    assert assets["b4"]["raster:bands"] == [
        {"data_type": "int16", "nodata": -9999.0, "spatial_resolution": 30.0}
    ]
    assert assets["b4"]["eo:bands"][0]["name"] == "b4"
    assert all("href" not in a for a in assets.values())


def test_items_have_band_assets_served_by_the_node(node: EmbeddedNode) -> None:
    item = _get(node, f"/collections/{COLLECTION}/items")["features"][0]
    scene = next(s for s in _scenes() if s.name == item["id"])
    assert sorted(item["assets"]) == ["b3", "b4", "b5", "mask"]
    b3 = item["assets"]["b3"]
    assert b3["roles"] == ["data"]
    band = b3["raster:bands"][0]
    assert band["nodata"] == -9999.0 and band["data_type"] == "int16"
    assert {"minimum", "maximum", "mean", "stddev"} <= band["statistics"].keys()
    assert b3["eo:bands"] == [
        {"name": "b3", "common_name": "red", "center_wavelength": 0.66, "full_width_half_max": 0.06}
    ]
    prefix = f"{node.edge_url}/stac/assets/assets/{COLLECTION}/{scene.name}/"
    for key, asset in item["assets"].items():
        assert asset["href"].startswith(prefix), (key, asset["href"])
    source = (scene / f"{scene.name}_b3.tif").read_bytes()
    assert httpx.get(b3["href"]).content == source
    part = httpx.get(b3["href"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == source[100:200]
    mask = item["assets"]["mask"]
    assert mask["roles"] == ["mask"]
    assert httpx.get(mask["href"]).content == (scene / f"{scene.name}_fmask.tif").read_bytes()


def test_pystac_client_searches_the_collection(node: EmbeddedNode) -> None:
    client = Client.open(f"{node.edge_url}/stac")
    assert client.get_collection(COLLECTION).extent.spatial.bboxes
    times = sorted(_when(s) for s in _scenes())
    first = times[0]
    found = client.search(
        collections=[COLLECTION],
        datetime=f"{first:%Y-%m-%d}T00:00:00Z/{first:%Y-%m-%d}T23:59:59Z",
    )
    assert [i.id for i in found.items()] == [s.name for s in _scenes() if _when(s) == first]
    bbox = _get(node, f"/collections/{COLLECTION}")["extent"]["spatial"]["bbox"][0]
    everything = client.search(collections=[COLLECTION], bbox=bbox, max_items=100)
    assert sorted(i.id for i in everything.items()) == sorted(s.name for s in _scenes())


@pytest.mark.skipif(
    not (schema_dir() / "schemas.stacspec.org").is_dir(), reason="offline STAC schemas missing"
)
def test_collection_and_items_are_valid_stac(node: EmbeddedNode) -> None:
    from stac_validator.stac_validator import StacValidate

    docs = [_get(node, f"/collections/{COLLECTION}")]
    docs += _get(node, f"/collections/{COLLECTION}/items")["features"]
    with offline_schemas():
        for doc in docs:
            check = StacValidate()  # core and every declared extension
            assert check.validate_dict(doc), (doc["id"], check.message)


@pytest.mark.parametrize("path", ["/collections/landsat-8", "/collections/landsat-8/items"])
def test_unknown_collection_is_a_stac_404_naming_it(node: EmbeddedNode, path: str) -> None:
    r = httpx.get(f"{node.edge_url}/stac{path}")
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == "NotFound"
    assert "'landsat-8'" in body["description"]
    assert "list_collections()" not in body["description"]
    assert f"{node.edge_url}/stac/collections" in body["description"]
    item = httpx.get(f"{node.edge_url}/stac/collections/landsat-8/items/x")
    assert item.status_code == 404 and "'landsat-8'" in item.json()["description"]


def test_replayed_scene_leaves_the_collection_unchanged(node: EmbeddedNode) -> None:
    before = orjson.dumps(_get(node, f"/collections/{COLLECTION}"))
    _publish(node, [_announce(_scenes()[0])])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the re-registration bumps the item's version
        item = _get(node, f"/collections/{COLLECTION}/items/{_scenes()[0].name}")
        if item["properties"]["gravitas:version"] >= 2:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the replayed scene was not registered again")
    assert orjson.dumps(_get(node, f"/collections/{COLLECTION}")) == before
