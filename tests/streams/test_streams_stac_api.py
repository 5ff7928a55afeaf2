# ruff: noqa: F811  (pytest fixtures imported from tests.fixtures.catalogs)
"""The node's STAC API through pystac-client and httpx, on 48 real Planetary Computer
items served by a live EmbeddedNode edge on 127.0.0.1: search, collections, items,
paging, CQL2, and transactions with and without a bearer token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pystac_client import Client

from gravitas.streams.node import EmbeddedNode
from tests.fixtures.catalogs import pc_items  # noqa: F401
from tests.fixtures.stac_api import running_node

TOKEN = "test-token-123"


def _collection(cid: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    boxes = [i["bbox"] for i in items]
    return {
        "type": "Collection",
        "id": cid,
        "stac_version": "1.0.0",
        "description": f"real Planetary Computer items of {cid}",
        "license": "proprietary",
        "extent": {
            "spatial": {
                "bbox": [
                    [
                        min(b[0] for b in boxes),
                        min(b[1] for b in boxes),
                        max(b[2] for b in boxes),
                        max(b[3] for b in boxes),
                    ]
                ]
            },
            "temporal": {"interval": [[None, None]]},
        },
        "links": [],
    }


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, pc_items: list[dict]) -> Iterator[EmbeddedNode]:
    with running_node(tmp_path_factory.mktemp("stacapi"), api_token=TOKEN) as n:
        cat = n.services.catalog
        by_coll: dict[str, list[dict]] = {}
        for it in pc_items:
            by_coll.setdefault(it["collection"], []).append(it)
        for cid, items in by_coll.items():
            cat.upsert_collection(_collection(cid, items))
            for it in items:
                cat.upsert_item(it)
        yield n


def stac_url(node: EmbeddedNode) -> str:
    return f"{node.edge_url}/stac"


def test_pystac_client_collections_and_items(node: EmbeddedNode, pc_items: list[dict]) -> None:
    client = Client.open(stac_url(node))
    ids = sorted(c.id for c in client.get_collections())
    assert ids == sorted({i["collection"] for i in pc_items})
    naip = client.get_collection("naip")
    got = list(naip.get_items())
    assert {i.id for i in got} == {i["id"] for i in pc_items if i["collection"] == "naip"}
    self_href = got[0].get_self_href()
    assert self_href is not None and self_href.startswith(
        stac_url(node) + "/collections/naip/items/"
    )
    assert httpx.get(self_href).json()["id"] == got[0].id
    assert got[0].properties["gravitas:node"] == "node-a"


def test_pystac_client_search_pages_through_everything(
    node: EmbeddedNode, pc_items: list[dict]
) -> None:
    client = Client.open(stac_url(node))
    search = client.search(limit=5, max_items=None)
    pages = list(search.pages())
    assert len(pages) == -(-len(pc_items) // 5)
    ids = [i.id for p in pages for i in p.items]
    assert len(ids) == len(set(ids)) == len(pc_items)
    assert search.matched() == len(pc_items)
    post = client.search(limit=7, method="POST", collections=["sentinel-2-l2a", "landsat-c2-l2"])
    assert len(list(post.items())) == 8


def test_pystac_client_search_filters(node: EmbeddedNode, pc_items: list[dict]) -> None:
    client = Client.open(stac_url(node))
    target = next(i for i in pc_items if i["collection"] == "sentinel-2-l2a")
    w, s, e, n = target["bbox"]
    bbox = [(w + e) / 2 - 0.01, (s + n) / 2 - 0.01, (w + e) / 2 + 0.01, (s + n) / 2 + 0.01]
    hits = client.search(bbox=bbox, datetime=target["properties"]["datetime"][:10])
    assert target["id"] in {i.id for i in hits.items()}
    text = client.search(filter="eo:cloud_cover < 10", filter_lang="cql2-text", limit=100)
    expected = {i["id"] for i in pc_items if i["properties"].get("eo:cloud_cover", 100) < 10}
    assert {i.id for i in text.items()} == expected
    cql_json = {"op": "like", "args": [{"property": "platform"}, "landsat%"]}
    js = client.search(filter=cql_json, method="POST", sortby=["-datetime"], limit=100)
    got = list(js.items())
    assert got and all(i.properties["platform"].startswith("landsat") for i in got)
    stamps = [i.properties["datetime"] for i in got]
    assert stamps == sorted(stamps, reverse=True)


def test_bad_requests_are_400_with_reason(node: EmbeddedNode) -> None:
    r = httpx.get(
        f"{stac_url(node)}/search",
        params={"filter": "t_intersects(datetime, INTERVAL('2020-01-01','..'))"},
    )
    assert r.status_code == 400 and "t_intersects" in r.json()["description"]
    r = httpx.get(f"{stac_url(node)}/search", params={"bbox": "1,2,three,4"})
    assert r.status_code == 400 and "bbox" in r.json()["description"]
    r = httpx.get(f"{stac_url(node)}/collections/nope/items")
    assert r.status_code == 404 and "nope" in r.json()["description"]


def test_transactions_need_the_token(node: EmbeddedNode, pc_items: list[dict]) -> None:
    base = stac_url(node)
    item = {k: v for k, v in pc_items[0].items() if k != "links"}
    item = {**item, "id": "tx-item-1"}
    cid = item["collection"]
    url = f"{base}/collections/{cid}/items"
    assert httpx.post(url, json=item).status_code == 401
    bad = httpx.post(url, json=item, headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    created = httpx.post(url, json=item, headers=auth)
    assert created.status_code == 201, created.text
    assert httpx.post(url, json=item, headers=auth).status_code == 409
    item["properties"] = {**item["properties"], "gravitas:test": "updated"}
    put = httpx.put(f"{url}/tx-item-1", json=item, headers=auth)
    assert put.status_code == 200 and put.json()["properties"]["gravitas:test"] == "updated"
    assert httpx.get(f"{url}/tx-item-1").json()["properties"]["gravitas:test"] == "updated"
    assert httpx.delete(f"{url}/tx-item-1", headers=auth).status_code == 204
    assert httpx.get(f"{url}/tx-item-1").status_code == 404
    coll = _collection("tx-coll", [item])
    assert httpx.post(f"{base}/collections", json=coll, headers=auth).status_code == 201
    assert httpx.get(f"{base}/collections/tx-coll").json()["id"] == "tx-coll"
    assert httpx.delete(f"{base}/collections/tx-coll", headers=auth).status_code == 204


def test_transactions_need_the_generated_token_when_none_is_configured(
    tmp_path: Path, pc_items: list[dict]
) -> None:
    with running_node(tmp_path, node_id="no-token") as n:
        url = f"{n.edge_url}/stac/collections"
        r = httpx.post(url, json=_collection("x", pc_items[:1]))
        assert r.status_code == 401
        assert "Authorization: Bearer" in r.json()["detail"]
        token_file = tmp_path / "api_token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        assert httpx.get(f"{url}/x").status_code == 404  # nothing was created
        auth = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
        assert httpx.post(url, json=_collection("x", pc_items[:1]), headers=auth).status_code == 201
