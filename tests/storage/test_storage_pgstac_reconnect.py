# ruff: noqa: F811  (pytest fixtures imported from tests.fixtures.catalogs)
"""The pgstac catalog outlives PostgreSQL restarts: pooled connections, retried calls.

A real PostgreSQL server is stopped, crashed and restarted under a live
:class:`PgstacCatalog` (and under a node's HTTP edge); searches and upserts afterwards
succeed, a call made while the server is down waits for it, and one that outlasts
``retry_timeout`` fails with a transient error the agents' policy retries.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from gravitas.storage.catalog import InvalidSearchError, SearchParams
from gravitas.storage.catalog.errors import CatalogUnavailableError
from gravitas.storage.catalog.pg_cluster import PostgresCluster
from gravitas.storage.catalog.pg_pool import is_transient
from gravitas.storage.catalog.pgstac import PgstacCatalog
from gravitas.streams.policy import Action, action_for
from tests.fixtures.catalog_state import stored_state
from tests.fixtures.catalogs import pc_items  # noqa: F401
from tests.fixtures.pgstac import restartable_pg  # noqa: F401
from tests.fixtures.stac_api import running_node

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def catalog(restartable_pg: PostgresCluster) -> Iterator[PgstacCatalog]:
    cat = PgstacCatalog(restartable_pg.dsn, node_id="node-a", retry_timeout=60)
    for cid in ("3dep-lidar-copc", "3dep-lidar-dsm"):  # a clean slate per test
        cat.delete_collection(cid)
    yield cat
    cat.close()


def _ids(cat: PgstacCatalog, **kw: Any) -> set[str]:
    return {it["id"] for it in cat.search(SearchParams(limit=100, **kw)).items}


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_search_and_upsert_after_restart(
    restartable_pg: PostgresCluster, catalog: PgstacCatalog, pc_items: list[dict], mode: str
) -> None:
    def restart() -> None:
        if mode == "immediate":  # a crash; the test cluster runs synchronous_commit=off
            with psycopg.connect(restartable_pg.dsn, autocommit=True) as admin:
                admin.execute("CHECKPOINT")  # so flush what was committed, as a real one would
        restartable_pg.restart(mode)

    first, second = pc_items[0], pc_items[1]
    assert catalog.upsert_item(first)
    assert _ids(catalog) == {first["id"]}
    restart()
    assert _ids(catalog) == {first["id"]}
    assert catalog.upsert_item(second, version=2)
    assert _ids(catalog) == {first["id"], second["id"]}
    restart()
    newer = copy.deepcopy(first)
    newer["properties"]["gravitas:test"] = "after-restart"
    assert catalog.upsert_item(newer, version=3)
    assert catalog.get_item(first["collection"], first["id"])["properties"]["gravitas:test"] == (
        "after-restart"
    )
    assert catalog.count() == 2


def test_call_during_downtime_waits_for_the_server(
    restartable_pg: PostgresCluster, catalog: PgstacCatalog, pc_items: list[dict]
) -> None:
    catalog.upsert_item(pc_items[0])
    restartable_pg.stop_server()
    results: dict[str, Any] = {}

    def search() -> None:
        started = time.monotonic()
        try:
            results["ids"] = _ids(catalog)
        except Exception as exc:  # reported below
            results["error"] = exc
        results["waited"] = time.monotonic() - started

    thread = threading.Thread(target=search)
    thread.start()
    time.sleep(2.0)
    assert thread.is_alive(), f"the search did not wait for the server: {results}"
    restartable_pg.start_server()
    thread.join(60)
    assert "error" not in results, results
    assert results["ids"] == {pc_items[0]["id"]}
    assert results["waited"] >= 2.0


def test_outage_longer_than_retry_timeout_is_transient(
    restartable_pg: PostgresCluster, pc_items: list[dict]
) -> None:
    cat = PgstacCatalog(restartable_pg.dsn, node_id="node-a", retry_timeout=2)
    try:
        restartable_pg.stop_server()
        try:
            started = time.monotonic()
            with pytest.raises(CatalogUnavailableError, match="unreachable") as info:
                cat.search(SearchParams())
            assert time.monotonic() - started < 15
            assert restartable_pg.password not in str(info.value)
            assert action_for(info.value) is Action.RETRY  # the runner retries, not dead-letters
            with pytest.raises(CatalogUnavailableError):
                cat.upsert_item(pc_items[0])
        finally:
            restartable_pg.start_server()
        assert cat.upsert_item(pc_items[0])  # and it works again once the server is back
    finally:
        cat.close()


def test_killed_backend_connections_are_replaced(
    restartable_pg: PostgresCluster, catalog: PgstacCatalog, pc_items: list[dict]
) -> None:
    """A connection cut under the pool (pg_terminate_backend) is not handed out again."""
    catalog.upsert_item(pc_items[0])
    with psycopg.connect(restartable_pg.dsn, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert killed and killed[0] >= 1
    assert _ids(catalog) == {pc_items[0]["id"]}
    assert catalog.upsert_item(pc_items[1])


def test_bad_statements_are_not_retried(
    restartable_pg: PostgresCluster, pc_items: list[dict]
) -> None:
    """A statement timeout or a bad value is the caller's problem: named, never retried."""
    cat = PgstacCatalog(restartable_pg.dsn, retry_timeout=30, statement_timeout_s=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled) as info:
            cat.pool.run("sleep", lambda conn: conn.execute("SELECT pg_sleep(5)"))
        assert time.monotonic() - started < 3
        assert not is_transient(info.value)
        with pytest.raises(psycopg.errors.DivisionByZero):
            cat.pool.run("divide", lambda conn: conn.execute("SELECT 1/0"))
        assert cat.pool.retries == 0
        with pytest.raises(InvalidSearchError, match=r"filter .*'like'.*datetime"):
            cat.search(SearchParams(filter={"op": "like", "args": [{"property": "datetime"}, 5]}))
        assert cat.pool.retries == 0
    finally:
        cat.close()


def test_node_edge_answers_after_restart(
    restartable_pg: PostgresCluster, tmp_path: Path, pc_items: list[dict]
) -> None:
    """Through the HTTP edge: search, restart PostgreSQL, search and register again."""
    dsn = restartable_pg.create_database("edge_restart")
    with running_node(tmp_path, node_id="node-a", catalog=dsn) as node:
        cat = node.services.catalog
        cat.upsert_item(pc_items[0])
        with httpx.Client(base_url=f"{node.edge_url}/stac", timeout=60) as client:
            before = client.get("/search")
            assert before.status_code == 200 and before.json()["numberMatched"] == 1
            state = stored_state(catalog=cat)
            restartable_pg.restart()
            after = client.get("/search")
            assert after.status_code == 200, after.text
            assert after.json()["features"][0]["id"] == pc_items[0]["id"]
            assert stored_state(catalog=cat) == state
            posted = client.post("/search", json={"ids": [pc_items[0]["id"]]})
            assert posted.status_code == 200 and posted.json()["numberMatched"] == 1
        assert cat.upsert_item(pc_items[1])
        assert cat.count() == 2
