# ruff: noqa: F811  (pytest fixtures imported from tests.fixtures.catalogs)
"""Collections that follow their items, on both catalog backends and as pure functions:
created by the first item, grown by each (bbox union, time interval, summaries,
item_assets), independent of arrival order, unchanged by replays, covering items that
arrived before an explicit collection, bounded against hostile items, and valid STAC."""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson
import pytest

from gravitas.storage.catalog import Catalog
from gravitas.storage.catalog.collections import (
    MAX_ITEM_ASSETS,
    MAX_VALUES,
    covering,
    new_collection,
)
from tests.fixtures.catalogs import catalog, file_items, pc_items  # noqa: F401
from tests.fixtures.stac_api import offline_schemas, schema_dir


def _fold(cid: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return covering(new_collection(cid, "node-a"), items)


def _of(items: list[dict[str, Any]], cid: str) -> list[dict[str, Any]]:
    return [i for i in items if i["collection"] == cid]


def test_growth_does_not_depend_on_arrival_order(pc_items: list[dict]) -> None:
    s2 = _of(pc_items, "sentinel-2-l2a")
    assert len(s2) >= 4
    first = orjson.dumps(_fold("s2", s2))
    for seed in range(5):
        shuffled = s2[:]
        random.Random(seed).shuffle(shuffled)
        assert orjson.dumps(_fold("s2", shuffled)) == first
    replayed = covering(_fold("s2", s2), s2)  # every item again
    assert orjson.dumps(replayed) == first


def test_extent_summaries_and_item_assets_cover_the_items(pc_items: list[dict]) -> None:
    s2 = _of(pc_items, "sentinel-2-l2a")
    coll = _fold("sentinel-2-l2a", s2)
    (box,) = coll["extent"]["spatial"]["bbox"]
    for it in s2:
        w, s, e, n = it["bbox"]
        assert box[0] <= w and box[1] <= s and box[2] >= e and box[3] >= n
    assert box[0] == min(i["bbox"][0] for i in s2) and box[3] == max(i["bbox"][3] for i in s2)
    start, end = coll["extent"]["temporal"]["interval"][0]
    stamps = sorted(i["properties"]["datetime"] for i in s2)
    assert start[:19] == stamps[0][:19] and end[:19] == stamps[-1][:19]
    summaries = coll["summaries"]
    assert summaries["platform"] == sorted({i["properties"]["platform"] for i in s2})
    clouds = [i["properties"]["eo:cloud_cover"] for i in s2]
    assert summaries["eo:cloud_cover"] == {"minimum": min(clouds), "maximum": max(clouds)}
    assert {b["name"] for b in summaries["eo:bands"]} >= {"B02", "B03", "B04", "B08"}
    assets = coll["item_assets"]
    assert assets["B04"]["roles"] == ["data"] and assets["B04"]["gsd"] == 10.0
    assert all("href" not in a and len(a) >= 2 for a in assets.values())


def test_item_assets_keep_only_what_every_item_shares(file_items: dict[str, dict]) -> None:
    one = copy.deepcopy(file_items["landsat"])
    two = copy.deepcopy(one)
    two["id"] = "other"
    two["assets"]["data"]["title"] = "another title"
    two["assets"]["data"]["raster:bands"][0]["nodata"] = 0
    coll = covering(new_collection("ls"), [one, two])
    data = coll["item_assets"]["data"]
    assert "title" not in data  # differs between the items
    assert "nodata" not in data["raster:bands"][0]  # differs too
    assert data["raster:bands"][0]["data_type"] == "int16"  # shared
    assert "statistics" not in data["raster:bands"][0]  # per item, never a definition
    assert not any(k.startswith("file:") for k in data)  # size, checksum: per file
    assert not {"proj:shape", "proj:transform", "proj:bbox"} & data.keys()  # per grid
    assert data["proj:code"] == one["assets"]["data"]["proj:code"]  # shared


def test_hostile_items_cannot_bloat_the_collection(file_items: dict[str, dict]) -> None:
    base = file_items["landsat"]
    items = []
    for i in range(MAX_VALUES + 40):
        it = copy.deepcopy(base)
        it["id"] = f"x{i}"
        it["properties"]["platform"] = f"sat-{i:04d}"
        it["assets"] = {f"a{i:04d}-{j}": {"href": f"/x/{j}", "roles": ["data"]} for j in range(5)}
        items.append(it)
    items.append({**copy.deepcopy(base), "id": "junk", "assets": {"bad": "not an object"}})
    items.append({**copy.deepcopy(base), "id": "nobox", "bbox": "nonsense"})
    coll = covering(new_collection("hostile"), items)
    platforms = {f"sat-{i:04d}" for i in range(MAX_VALUES + 40)} | {base["properties"]["platform"]}
    assert coll["summaries"]["platform"] == sorted(platforms)[:MAX_VALUES]
    assert len(coll["item_assets"]) == MAX_ITEM_ASSETS
    assert "bad" not in coll["item_assets"]


def test_open_ended_user_extents_stay_open(pc_items: list[dict]) -> None:
    coll = new_collection("naip")
    coll["extent"] = {
        "spatial": {"bbox": [[0.0, 0.0, 1.0, 1.0]]},
        "temporal": {"interval": [[None, None]]},
    }
    grown = covering(coll, _of(pc_items, "naip"))
    assert grown["extent"]["temporal"]["interval"] == [[None, None]]
    assert grown["extent"]["spatial"]["bbox"][0][0] < 0.0  # NAIP is in the western hemisphere
    assert coll["extent"]["spatial"]["bbox"] == [[0.0, 0.0, 1.0, 1.0]]  # input untouched


# --- both backends ---------------------------------------------------------------------


def test_first_item_creates_its_collection_and_later_ones_grow_it(
    catalog: Catalog, pc_items: list[dict]
) -> None:
    naip = _of(pc_items, "naip")
    assert catalog.list_collections() == []
    catalog.upsert_item(naip[0])
    assert [c["id"] for c in catalog.list_collections()] == ["naip"]
    assert catalog.get_collection("naip")["extent"]["spatial"]["bbox"] == [naip[0]["bbox"]]
    for it in naip[1:]:
        catalog.upsert_item(it)
    stored = catalog.get_collection("naip")
    assert orjson.dumps(stored["extent"]) == orjson.dumps(_fold("naip", naip)["extent"])
    assert stored["summaries"] == _fold("naip", naip)["summaries"]
    before = orjson.dumps(catalog.get_collection("naip"))
    for it in naip:  # replays change nothing
        catalog.upsert_item(it)
    assert orjson.dumps(catalog.get_collection("naip")) == before


def test_older_versions_do_not_grow_the_collection(catalog: Catalog, pc_items: list[dict]) -> None:
    item = copy.deepcopy(_of(pc_items, "naip")[0])
    catalog.upsert_item(item, version=5)
    before = catalog.get_collection("naip")
    stale = copy.deepcopy(item)
    stale["bbox"] = [-10.0, -10.0, 10.0, 10.0]
    stale["geometry"] = {
        "type": "Polygon",
        "coordinates": [[[-10, -10], [10, -10], [10, 10], [-10, 10], [-10, -10]]],
    }
    assert catalog.upsert_item(stale, version=4) is False
    assert catalog.get_collection("naip") == before


def test_explicit_collection_covers_items_that_came_first(
    catalog: Catalog, pc_items: list[dict]
) -> None:
    s2 = _of(pc_items, "sentinel-2-l2a")
    for it in s2:
        catalog.upsert_item(it)
    catalog.upsert_collection(
        {
            "type": "Collection",
            "id": "sentinel-2-l2a",
            "stac_version": "1.1.0",
            "description": "Sentinel-2 L2A, described by its owner",
            "license": "proprietary",
            "extent": {
                "spatial": {"bbox": [[10.0, 50.0, 11.0, 51.0]]},
                "temporal": {"interval": [["2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"]]},
            },
            "links": [],
        }
    )
    coll = catalog.get_collection("sentinel-2-l2a")
    assert coll["description"] == "Sentinel-2 L2A, described by its owner"
    folded = _fold("x", s2)
    box = coll["extent"]["spatial"]["bbox"][0]
    fbox = folded["extent"]["spatial"]["bbox"][0]
    assert box == [
        min(10.0, fbox[0]),
        min(50.0, fbox[1]),
        max(11.0, fbox[2]),
        max(51.0, fbox[3]),
    ]
    assert sorted(coll["item_assets"]) == sorted(folded["item_assets"])
    for it in s2:  # items read back whole after item_assets changed (pgstac dehydrates)
        got = catalog.get_item("sentinel-2-l2a", it["id"])
        assert got["assets"] == it["assets"]


@pytest.mark.skipif(
    not (schema_dir() / "schemas.stacspec.org").is_dir(), reason="offline STAC schemas missing"
)
def test_grown_collections_are_valid_stac(catalog: Catalog, pc_items: list[dict]) -> None:
    from stac_validator.stac_validator import StacValidate

    for it in pc_items:
        catalog.upsert_item(it)
    colls = catalog.list_collections()
    assert len(colls) == len({i["collection"] for i in pc_items})
    with offline_schemas():
        for coll in colls:
            check = StacValidate()
            assert check.validate_dict(coll), (coll["id"], check.message)
