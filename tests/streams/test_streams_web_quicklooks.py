"""Which quicklook URL the web map's popup gets, on a real local object store: this
node's published objects through its asset route, a configured peer's through the peer
route, and nothing for every other href (raw store hrefs, unpublished keys, traversal,
another origin, a peer's URL on an item another node owns). The browser run is in
test_streams_webmap.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gravitas.agents.signing import NodeIdentity, generate_seed
from gravitas.schemas.settings import Settings, load_settings
from gravitas.storage.objects.local import LocalObjectStore
from gravitas.storage.objects.public import key_of_href
from gravitas.streams.web.quicklooks import quicklook_url

PEER_URL = "https://node-b.example.org"


def _item(href: str, roles: tuple[str, ...] = ("thumbnail",)) -> dict[str, Any]:
    return {"id": "i", "assets": {"ql": {"href": href, "roles": list(roles)}}}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    key = NodeIdentity.load(load_settings(node_id="b", signing_key=generate_seed())).public_key
    return load_settings(
        data_dir=tmp_path, node_id="a", peers={"b": {"public_key": key, "api_url": PEER_URL}}
    )


def test_quicklook_urls_are_same_origin_routes_or_nothing(
    tmp_path: Path, settings: Settings
) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    own = store.href("assets/ql/x.png")
    cases: list[tuple[str, dict[str, Any], str, str | None]] = [
        ("own published object", _item(own), "a", "/stac/assets/assets/ql/x.png"),
        ("own object as a path", _item(str(tmp_path / "objects/datacubes/r/q.png")), "a",
         "/stac/assets/datacubes/r/q.png"),
        ("peer's asset route", _item(f"{PEER_URL}/stac/assets/methane/p/q.png"), "b",
         "/web/quicklooks/b/methane/p/q.png"),
        ("unpublished own key", _item(store.href("results/r.png")), "a", None),
        ("not a quicklook role", _item(own, ("data",)), "a", None),
        ("raw path outside the store", _item("/etc/passwd"), "a", None),
        ("file URL outside the store", _item("file:///etc/passwd"), "a", None),
        ("another origin", _item("https://elsewhere.example/t.png"), "a", None),
        ("peer URL on an item of another node", _item(f"{PEER_URL}/stac/assets/assets/x.png"),
         "c", None),
        ("peer's unpublished key", _item(f"{PEER_URL}/stac/assets/results/x.png"), "b", None),
        ("peer traversal", _item(f"{PEER_URL}/stac/assets/assets/%2E%2E/node_key"), "b", None),
        ("peer's other route", _item(f"{PEER_URL}/tiles/x/1/1/1.png"), "b", None),
    ]  # fmt: skip
    for name, item, owner, expected in cases:
        assert quicklook_url(item, store, owner, settings) == expected, name


def test_datacube_quicklooks_are_the_collections_own_objects_only(
    tmp_path: Path, settings: Settings
) -> None:
    from gravitas.schemas.errors import GravitasError
    from gravitas.streams.web.cube_quicklooks import _quicklooks, is_datacube_item
    from gravitas.streams.web.quicklooks import peer_key

    store = LocalObjectStore(tmp_path / "objects")
    peer = settings.peers["b"]

    def coll(**hrefs: str) -> dict[str, Any]:
        return {
            "id": "datacube-r1",
            "extent": {"spatial": {"bbox": [[10, 40, 12, 42]]},
                       "temporal": {"interval": [["2020-01-01T00:00:00Z",
                                                  "2020-01-31T00:00:00Z"]]}},
            "cube:dimensions": {"band": {"values": ["t2m:era5"]}},
            "assets": {k: {"href": v, "roles": ["overview"]} for k, v in hrefs.items()},
        }  # fmt: skip

    def own(doc: dict[str, Any]) -> list[dict[str, str]]:
        return _quicklooks(doc, "datacube-r1", lambda h: key_of_href(store, h), lambda k: k)

    def theirs(doc: dict[str, Any]) -> list[dict[str, str]]:
        return _quicklooks(doc, "datacube-r1", lambda h: peer_key(h, peer), lambda k: k)

    good = store.href("datacubes/r1/quicklook_t2m.png")
    (look,) = own(coll(quicklook_t2m=good, data=store.href("datacubes/r1/cube.zarr")))
    assert look["url"] == "datacubes/r1/quicklook_t2m.png" and look["modality"] == "t2m"
    assert look["caption"].startswith("t2m:era5 over 40.00° N to 42.00° N, 10.00° E")
    assert "2020-01-01 to 2020-01-31" in look["caption"] and "units" in look["caption"]
    (look,) = theirs(coll(quicklook_t2m=f"{PEER_URL}/stac/assets/datacubes/r1/quicklook_t2m.png"))
    assert look["url"] == "datacubes/r1/quicklook_t2m.png"
    refused = {
        "another request's quicklook": (own, store.href("datacubes/r2/quicklook_t2m.png")),
        "another modality's name": (own, store.href("datacubes/r1/quicklook_tp.png")),
        "another published object": (own, store.href("assets/ql/x.png")),
        "an unpublished key": (own, store.href("results/r1/quicklook_t2m.png")),
        "a raw path": (own, "/etc/passwd"),
        "traversal": (own, store.href("datacubes/r1/q")[:-1] + "../r1/quicklook_t2m.png"),
        "another origin": (own, "https://elsewhere.example/datacubes/r1/quicklook_t2m.png"),
        "the peer's unpublished key": (theirs, f"{PEER_URL}/stac/assets/results/quicklook_t2m.png"),
        "the peer's traversal": (
            theirs, f"{PEER_URL}/stac/assets/datacubes/r1/%2E%2E/r1/quicklook_t2m.png"
        ),
        "a store href on a peer's collection": (theirs, good),
    }  # fmt: skip
    for name, (read, href) in refused.items():
        with pytest.raises(GravitasError, match="has no datacube quicklook") as info:
            read(coll(quicklook_t2m=href))
        assert repr(href[:160]) in str(info.value), name
    assert is_datacube_item({"collection": "datacube-r1", "properties": {"gravitas:split": "x"}})
    assert not is_datacube_item({"collection": "quicklooks", "properties": {"gravitas:split": "x"}})
    assert not is_datacube_item({"collection": "datacube-r1", "properties": {}})
