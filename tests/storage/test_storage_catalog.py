# ruff: noqa: F811  (pytest fixtures imported from tests.fixtures.catalogs)
"""The Catalog contract on every backend, on real STAC items (Planetary Computer,
odc-stac) and on items built from real files (Sentinel-2 JP2, Landsat 7 TIF, ERA5 NetCDF)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gravitas.storage.catalog import (
    NODE_PROPERTY,
    Catalog,
    CollectionNotFoundError,
    InvalidItemError,
    InvalidSearchError,
    ItemNotFoundError,
    SearchParams,
    SortField,
)
from tests.fixtures.catalogs import catalog, file_items, odc_items, pc_items  # noqa: F401


def _load(cat: Catalog, items: list[dict[str, Any]]) -> None:
    for it in items:
        cat.upsert_item(it)


def _ids(page_items: list[dict[str, Any]]) -> set[str]:
    return {i["id"] for i in page_items}


def _all(cat: Catalog, params: SearchParams) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    page = cat.search(params)
    out.extend(page.items)
    while page.next_token:
        page = cat.search(SearchParams(**{**params.__dict__, "token": page.next_token}))
        out.extend(page.items)
    return out


def test_upsert_get_roundtrip_carries_owner(catalog: Catalog, pc_items: list[dict]) -> None:
    item = pc_items[0]
    assert catalog.upsert_item(item) is True
    got = catalog.get_item(item["collection"], item["id"])
    assert got["properties"][NODE_PROPERTY] == "node-a"
    assert got["geometry"] == item["geometry"]
    assert got["assets"].keys() == item["assets"].keys()
    with pytest.raises(ItemNotFoundError, match="nope"):
        catalog.get_item(item["collection"], "nope")


def test_versions_never_go_back(catalog: Catalog, pc_items: list[dict]) -> None:
    item = copy.deepcopy(pc_items[0])
    cid, iid = item["collection"], item["id"]
    item["properties"]["gravitas:test"] = "v2"
    assert catalog.upsert_item(item, version=2)
    older = copy.deepcopy(item)
    older["properties"]["gravitas:test"] = "v1"
    assert catalog.upsert_item(older, version=1) is False
    assert catalog.get_item(cid, iid)["properties"]["gravitas:test"] == "v2"
    assert catalog.upsert_item(item, version=2)  # replay: idempotent
    assert catalog.count() == 1
    assert catalog.delete_item(cid, iid, version=1) is False  # stale retraction
    assert catalog.delete_item(cid, iid, version=2) is True
    assert catalog.count() == 0


def test_collections_crud(catalog: Catalog, odc_items: list[dict]) -> None:
    import json

    from gravitas.storage.sampledata import fetch

    coll = json.loads((fetch("stac_items_odc") / "sentinel-2-l2a.collection.json").read_text())
    catalog.upsert_collection(coll)
    assert catalog.get_collection("sentinel-2-l2a")["extent"] == coll["extent"]
    assert [c["id"] for c in catalog.list_collections()] == ["sentinel-2-l2a"]
    _load(catalog, odc_items)
    n = catalog.count("sentinel-2-l2a")
    assert n >= 2
    assert catalog.delete_collection("sentinel-2-l2a") is True
    assert catalog.count("sentinel-2-l2a") == 0
    with pytest.raises(CollectionNotFoundError, match="sentinel-2-l2a"):
        catalog.get_collection("sentinel-2-l2a")


def test_invalid_items_rejected(catalog: Catalog, pc_items: list[dict]) -> None:
    bad = copy.deepcopy(pc_items[0])
    del bad["collection"]
    with pytest.raises(InvalidItemError, match="collection"):
        catalog.upsert_item(bad)
    with pytest.raises(InvalidItemError, match="Feature"):
        catalog.upsert_item({"type": "Collection", "id": "x"})


def test_remote_items_only_in_federated_search(catalog: Catalog, pc_items: list[dict]) -> None:
    _load(catalog, pc_items[:4])
    for it in pc_items[4:8]:
        catalog.upsert_item(it, owning_node="node-b", version=3)
    local = catalog.search(SearchParams(limit=100))
    fed = catalog.search(SearchParams(limit=100, federated=True))
    assert local.matched == 4 and fed.matched == 8
    nodes = {i["id"]: i["properties"][NODE_PROPERTY] for i in fed.items}
    assert {nodes[i["id"]] for i in pc_items[4:8]} == {"node-b"}
    assert catalog.count(federated=False) == 4 and catalog.count() == 8


def test_bbox_intersects_datetime_collections_ids(catalog: Catalog, pc_items: list[dict]) -> None:
    _load(catalog, pc_items)
    s2 = [i for i in pc_items if i["collection"] == "sentinel-2-l2a"]
    target = s2[0]
    w, s, e, n = target["bbox"]
    cx, cy = (w + e) / 2, (s + n) / 2
    hits = catalog.search(
        SearchParams(bbox=(cx - 0.01, cy - 0.01, cx + 0.01, cy + 0.01), limit=100)
    )
    assert target["id"] in _ids(hits.items)
    far = catalog.search(
        SearchParams(
            bbox=(cx + 170 if cx < 0 else cx - 170, -1, cx + 171 if cx < 0 else cx - 169, 1),
            limit=100,
        )
    )
    assert target["id"] not in _ids(far.items)
    poly = {"type": "Point", "coordinates": [cx, cy]}
    assert target["id"] in _ids(catalog.search(SearchParams(intersects=poly, limit=100)).items)
    dt = target["properties"]["datetime"]
    day = dt[:10]
    got = catalog.search(SearchParams(datetime=f"{day}T00:00:00Z/{day}T23:59:59Z", limit=100))
    assert target["id"] in _ids(got.items)
    assert all(
        i["properties"].get("datetime", "")[:10] == day or i["properties"].get("start_datetime")
        for i in got.items
    )
    after = catalog.search(SearchParams(datetime=f"{dt}/..", limit=100))
    assert target["id"] in _ids(after.items)
    before = catalog.search(SearchParams(datetime=f"../{day}T00:00:00Z", limit=100))
    assert target["id"] not in _ids(before.items)
    by_coll = catalog.search(SearchParams(collections=("sentinel-2-l2a",), limit=100))
    assert by_coll.matched == len(s2)
    by_ids = catalog.search(SearchParams(ids=(s2[0]["id"], s2[1]["id"]), limit=100))
    assert _ids(by_ids.items) == {s2[0]["id"], s2[1]["id"]}


@pytest.mark.parametrize(
    ("flt", "check"),
    [
        ("eo:cloud_cover < 10", lambda p: p.get("eo:cloud_cover", 99) < 10),
        ("eo:cloud_cover BETWEEN 0.1 AND 30", lambda p: 0.1 <= p["eo:cloud_cover"] <= 30),
        ("platform LIKE 'landsat%'", lambda p: p["platform"].startswith("landsat")),
        (
            "platform IN ('landsat-8', 'Sentinel-2B')",
            lambda p: p["platform"] in ("landsat-8", "Sentinel-2B"),
        ),
        (
            "NOT (eo:cloud_cover >= 10) AND eo:cloud_cover IS NOT NULL",
            lambda p: p["eo:cloud_cover"] < 10,
        ),
        (
            "platform = 'landsat-8' OR platform = 'landsat-9'",
            lambda p: p["platform"] in ("landsat-8", "landsat-9"),
        ),
        ("datetime >= TIMESTAMP('2024-01-01T00:00:00Z')", lambda p: p["datetime"] >= "2024"),
    ],
)
def test_cql2_text_filters(catalog: Catalog, pc_items: list[dict], flt: str, check: Any) -> None:
    _load(catalog, pc_items)
    page = catalog.search(SearchParams(filter=flt, limit=200))
    assert page.matched and page.matched > 0
    assert all(check(i["properties"]) for i in page.items)
    expected = sum(1 for i in pc_items if _safe(check, i["properties"]))
    assert page.matched == expected


def _safe(check: Any, props: dict) -> bool:
    try:
        return bool(check(props))
    except (KeyError, TypeError):
        return False


def test_cql2_json_and_spatial(catalog: Catalog, pc_items: list[dict]) -> None:
    _load(catalog, pc_items)
    target = next(i for i in pc_items if i["collection"] == "naip")
    w, s, e, n = target["bbox"]
    pt = {"type": "Point", "coordinates": [(w + e) / 2, (s + n) / 2]}
    flt = {
        "op": "and",
        "args": [
            {"op": "s_intersects", "args": [{"property": "geometry"}, pt]},
            {"op": "=", "args": [{"property": "collection"}, "naip"]},
        ],
    }
    page = catalog.search(SearchParams(filter=flt, limit=50))
    assert target["id"] in _ids(page.items)
    assert all(i["collection"] == "naip" for i in page.items)
    isnull = {"op": "isNull", "args": [{"property": "eo:cloud_cover"}]}
    nulls = catalog.search(SearchParams(filter=isnull, limit=200))
    assert nulls.matched == sum(
        1 for i in pc_items if i["properties"].get("eo:cloud_cover") is None
    )


def test_sort_and_paging(catalog: Catalog, pc_items: list[dict]) -> None:
    _load(catalog, pc_items)
    params = SearchParams(
        filter="eo:cloud_cover IS NOT NULL", sortby=(SortField("eo:cloud_cover", "desc"),), limit=5
    )
    got = _all(catalog, params)
    ccs = [i["properties"]["eo:cloud_cover"] for i in got]
    assert ccs == sorted(ccs, reverse=True) and len(ccs) == len(set(i["id"] for i in got))
    asc = _all(
        catalog,
        SearchParams(
            sortby=(SortField.parse("+datetime"),),
            limit=7,
            collections=("sentinel-2-l2a", "landsat-c2-l2"),
        ),
    )
    dts = [i["properties"]["datetime"] for i in asc]
    assert dts == sorted(dts)
    everything = _all(catalog, SearchParams(limit=7))
    assert len(everything) == len({(i["collection"], i["id"]) for i in everything}) == len(pc_items)
    first = catalog.search(SearchParams(limit=7))
    with pytest.raises(InvalidSearchError, match="different search"):
        catalog.search(SearchParams(limit=7, ids=("x",), token=first.next_token))


def test_items_from_real_files(catalog: Catalog, file_items: dict[str, dict]) -> None:
    _load(catalog, list(file_items.values()))
    berlin = catalog.search(SearchParams(bbox=(12.5, 52.45, 12.6, 52.5)))
    assert _ids(berlin.items) >= {"T33UUU_20170216T102101", file_items["era5"]["id"]}
    colorado = catalog.search(
        SearchParams(bbox=(-107.0, 40.2, -106.8, 40.4), collections=("landsat-7-sr",))
    )
    assert _ids(colorado.items) == {file_items["landsat"]["id"]}
    jan = catalog.search(SearchParams(datetime="2017-01-01T06:00:00Z/2017-01-01T18:00:00Z"))
    assert _ids(jan.items) == {file_items["era5"]["id"]}
    feb = catalog.search(
        SearchParams(
            datetime="2017-02-16T00:00:00Z/2017-02-16T23:59:59Z", filter="proj:code = 'EPSG:32633'"
        )
    )
    assert _ids(feb.items) == {"T33UUU_20170216T102101"}
    s2 = catalog.get_item("sentinel-2-l1c", "T33UUU_20170216T102101")
    assert len(s2["assets"]) == 13
    assert s2["assets"]["B04"]["eo:bands"][0]["common_name"] == "red"


def test_bad_search_params_named() -> None:
    with pytest.raises(InvalidSearchError, match="bbox"):
        SearchParams(bbox=(1.0, 2.0, 3.0))
    with pytest.raises(InvalidSearchError, match="RFC 3339"):
        SearchParams(datetime="yesterday")
    with pytest.raises(InvalidSearchError, match="limit"):
        SearchParams(limit=0)
    with pytest.raises(InvalidSearchError, match="cql2-text"):
        SearchParams(filter="eo:cloud_cover <<< 3").filter_json()
