# ruff: noqa: F811  (pytest fixtures imported from tests.fixtures.catalogs)
"""stac-fastapi-pgstac behind :class:`GuardFilters`: hostile GET filters answered 400.

Without the guard, a cql2-text filter nested a few thousand levels deep is a segmentation
fault of the whole API process (``cql2.Expr`` on a request thread).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gravitas.storage.catalog.pg_cluster import PostgresCluster
from gravitas.storage.catalog.pgstac import PgstacCatalog
from gravitas.storage.catalog.pgstac_api import PgstacApiServer
from tests.fixtures.catalog_state import stored_state
from tests.fixtures.catalogs import pc_items  # noqa: F401
from tests.fixtures.pgstac import fresh_pgstac_dsn


@pytest.fixture(scope="module")
def api(
    pg_cluster: PostgresCluster, pc_items: list[dict[str, Any]]
) -> Iterator[tuple[PgstacCatalog, httpx.Client]]:
    cat = PgstacCatalog(fresh_pgstac_dsn(pg_cluster), node_id="node-a")
    for item in pc_items[:4]:
        cat.upsert_item(item)
    with PgstacApiServer(cat.dsn) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        yield cat, c
    cat.close()


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"filter": "(" * 3000 + "a = 1" + ")" * 3000}, "nests parentheses"),
        ({"filter": "a = " + "- " * 6000 + "1"}, "more than 8000"),
        ({"filter": "NOT " * 1990 + "a = 1"}, "nested deeper than"),
        ({"filter": '"x\x00" = 1'}, "NUL"),
        ({"filter": '"a\\"b" = 1'}, "cannot parse"),
        (
            {
                "filter": '{"op": "=", "args": [{"property": "a\\"b"}, 1]}',
                "filter-lang": "cql2-json",
            },
            'a"b',
        ),
        ({"filter": "[1, 2]", "filter-lang": "cql2-json"}, "not a condition"),
        ({"filter": "a = 1", "filter-lang": "sql"}, "filter-lang"),
    ],
)
def test_hostile_get_filters_refused(
    api: tuple[PgstacCatalog, httpx.Client], params: dict[str, str], named: str
) -> None:
    cat, client = api
    before = stored_state(catalog=cat)
    for path in ("/search", "/collections/3dep-lidar-copc/items"):
        r = client.get(path, params=params)
        assert r.status_code == 400, r.text[:300]
        assert named in r.json()["description"]
    assert client.get("/_mgmt/ping").status_code == 200
    assert stored_state(catalog=cat) == before


def test_cql2_text_still_filters(
    api: tuple[PgstacCatalog, httpx.Client], pc_items: list[dict[str, Any]]
) -> None:
    _, client = api
    wanted = pc_items[1]
    r = client.get("/search", params={"filter": f"id = '{wanted['id']}'"})
    assert r.status_code == 200, r.text[:300]
    assert [f["id"] for f in r.json()["features"]] == [wanted["id"]]
    r = client.get("/search", params={"filter": "\"x') OR 1=1 --\" = 'y'"})
    assert r.status_code == 200 and r.json()["features"] == []
