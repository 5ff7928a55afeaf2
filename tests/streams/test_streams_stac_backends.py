# ruff: noqa: F811  (pytest fixtures imported from tests.fixtures.catalogs)
"""One STAC API implementation over both catalog backends: the node's router serves the
embedded SQLite catalog and PostgreSQL + pgstac alike, so the two cannot drift.

Real Planetary Computer items are written through the node's catalog; the API then
passes ``stac-api-validator`` (offline schemas) and answers pystac-client searches with
the same items the catalog's own search returns, on each backend.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pystac_client import Client

from gravitas.storage.catalog import Catalog, SearchParams, SortField
from gravitas.streams.node import EmbeddedNode
from tests.fixtures.catalogs import pc_items  # noqa: F401
from tests.fixtures.stac_api import local_schema, running_node
from tests.fixtures.stac_validation import run_stac_api_validator, stac_schemas_dir


def _collection(cid: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A real collection document whose extent covers ``items``."""
    boxes = [i["bbox"] for i in items]
    times = sorted(
        t
        for i in items
        for t in (
            i["properties"].get("datetime"),
            i["properties"].get("start_datetime"),
            i["properties"].get("end_datetime"),
        )
        if t
    )
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": cid,
        "title": cid,
        "description": f"{cid} items from the Planetary Computer (stac-geoparquet test data)",
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
            "temporal": {"interval": [[times[0], times[-1]]]},
        },
        "links": [],
    }


@pytest.fixture(scope="module")
def api_items(pc_items: list[dict]) -> list[dict[str, Any]]:
    """PC items whose extension schemas are all in the offline schema folder."""
    return [
        i
        for i in pc_items
        if all(local_schema(u) is not None for u in i.get("stac_extensions", []))
    ]


class Api:
    """A live node's STAC API and the catalog behind it."""

    def __init__(self, node: EmbeddedNode) -> None:
        self.catalog: Catalog = node.services.catalog
        self.url = f"{node.edge_url}/stac"


@pytest.fixture(scope="module", params=["sqlite", "pgstac"])
def api(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    api_items: list[dict[str, Any]],
) -> Iterator[tuple[Catalog, Api]]:
    """A node whose catalog (SQLite or pgstac) holds ``api_items`` and their collections."""
    extra: dict[str, Any] = {}
    if request.param == "pgstac":
        from tests.fixtures.pgstac import fresh_pgstac_dsn

        extra["catalog"] = fresh_pgstac_dsn(request.getfixturevalue("pg_cluster"))
    with running_node(tmp_path_factory.mktemp("backends"), node_id="node-a", **extra) as node:
        catalog = node.services.catalog
        by_coll: dict[str, list[dict[str, Any]]] = {}
        for item in api_items:
            by_coll.setdefault(item["collection"], []).append(item)
        for cid, items in by_coll.items():
            catalog.upsert_collection(_collection(cid, items))
            for item in items:
                assert catalog.upsert_item(item, version=2)
        yield catalog, Api(node)


def test_api_items_cover_several_collections(api_items: list[dict[str, Any]]) -> None:
    colls = {i["collection"] for i in api_items}
    assert {"naip", "cop-dem-glo-30", "io-lulc-annual-v02"} <= colls and len(api_items) >= 16


@pytest.mark.slow
def test_stac_api_validator_passes_on_each_backend(
    api: tuple[Catalog, Api], api_items: list[dict[str, Any]]
) -> None:
    _, api = api
    schemas = stac_schemas_dir()
    assert schemas is not None, "set GRAVITAS_STAC_SCHEMAS to the offline stac-schemas folder"
    naip = next(i for i in api_items if i["collection"] == "naip")
    ok, output = run_stac_api_validator(
        api.url,
        ["core", "collections", "features", "item-search", "filter"],
        schemas,
        collection="naip",
        geometry=json.dumps(naip["geometry"]),
    )
    assert ok, output[-8000:]
    assert "Errors: none" in output


def test_landing_page_conformance_and_collections(
    api: tuple[Catalog, Api], api_items: list[dict[str, Any]]
) -> None:
    catalog, api = api
    landing = httpx.get(api.url).json()
    assert "https://api.stacspec.org/v1.0.0/item-search" in landing["conformsTo"]
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json" in landing["conformsTo"]
    body = httpx.get(f"{api.url}/collections", params={"limit": 100}).json()
    served = sorted(c["id"] for c in body["collections"])
    assert served == [c["id"] for c in catalog.list_collections()]
    assert served == sorted({i["collection"] for i in api_items})


def test_pystac_client_matches_catalog_search(
    api: tuple[Catalog, Api], api_items: list[dict[str, Any]]
) -> None:
    catalog, api = api
    client = Client.open(api.url)
    naip = next(i for i in api_items if i["collection"] == "naip")
    bbox = naip["bbox"]
    api_ids = [i.id for i in client.search(bbox=bbox, max_items=100).items()]
    page = catalog.search(SearchParams(bbox=tuple(bbox), limit=100))
    assert naip["id"] in api_ids
    assert sorted(api_ids) == sorted(i["id"] for i in page.items)

    flt = {"op": ">=", "args": [{"property": "gsd"}, 0.6]}
    api_gsd = list(client.search(filter=flt, filter_lang="cql2-json", max_items=100).items())
    want = sorted(i["id"] for i in api_items if (i["properties"].get("gsd") or 0) >= 0.6)
    assert want and sorted(i.id for i in api_gsd) == want

    dts = [
        i.properties["datetime"]
        for i in client.search(
            collections=["naip", "planet-nicfi-analytic"], sortby="+datetime", max_items=50
        ).items()
        if i.properties.get("datetime")
    ]
    assert len(dts) >= 4 and dts == sorted(dts)


def test_api_pages_with_tokens(api: tuple[Catalog, Api]) -> None:
    catalog, api = api
    client = Client.open(api.url)
    search = client.search(limit=3, max_items=None)
    pages = list(search.pages_as_dicts())
    ids = [f["id"] for p in pages for f in p["features"]]
    assert len(pages) >= 5 and all(len(p["features"]) <= 3 for p in pages)
    assert len(ids) == len(set(ids)) == catalog.count()


def test_catalog_writes_show_up_in_api_with_node_and_version(
    api: tuple[Catalog, Api], api_items: list[dict[str, Any]]
) -> None:
    catalog, api = api
    item = next(i for i in api_items if i["collection"] == "cop-dem-glo-30")
    url = f"{api.url}/collections/{item['collection']}/items/{item['id']}"
    before = httpx.get(url).json()
    assert before["properties"]["gravitas:node"] == "node-a"
    assert before["properties"]["gravitas:version"] == 2
    newer = {**item, "properties": {**item["properties"], "title": "re-registered"}}
    assert catalog.upsert_item(newer, owning_node="node-b", version=3)
    older = {**item, "properties": {**item["properties"], "title": "stale"}}
    assert not catalog.upsert_item(older, owning_node="node-c", version=1)
    after = httpx.get(url).json()
    assert after["properties"]["title"] == "re-registered"
    assert after["properties"]["gravitas:node"] == "node-b"
    assert after["properties"]["gravitas:version"] == 3
    local = catalog.search(SearchParams(ids=(item["id"],), federated=False))
    assert local.items == []
    assert catalog.upsert_item(item, version=3)  # back to the original content, node-a


def test_api_sort_matches_catalog_sort(
    api: tuple[Catalog, Api],
) -> None:
    catalog, api = api
    r = httpx.post(
        f"{api.url}/search",
        json={
            "sortby": [  # the catalog breaks ties by collection, id ascending; say so here
                {"field": "properties.gsd", "direction": "desc"},
                {"field": "collection", "direction": "asc"},
                {"field": "id", "direction": "asc"},
            ],
            "limit": 100,
            "filter": {"op": "isNull", "args": [{"property": "gsd"}]},
            "filter-lang": "cql2-json",
        },
    )
    assert r.status_code == 200, r.text
    null_gsd = [f["id"] for f in r.json()["features"]]
    assert len(null_gsd) >= 4
    page = catalog.search(
        SearchParams(filter="gsd IS NULL", sortby=(SortField("gsd", "desc"),), limit=100)
    )
    assert null_gsd == [i["id"] for i in page.items]
