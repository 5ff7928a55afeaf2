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
