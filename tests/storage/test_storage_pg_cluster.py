"""PostgresCluster: a real throwaway PostgreSQL 15 + PostGIS + pgstac server."""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg
import pytest

from gravitas.storage.catalog import CatalogError
from gravitas.storage.catalog.factory import open_catalog
from gravitas.storage.catalog.pg_cluster import PostgresCluster, PostgresClusterError
from gravitas.storage.catalog.pgstac import PgstacCatalog
from tests.fixtures.pgstac import fresh_pgstac_dsn


def test_cluster_runs_postgis_and_pgstac_and_stops_cleanly() -> None:
    with PostgresCluster() as pg:
        root = pg.root
        assert root is not None and (root / "data" / "PG_VERSION").read_text().strip() == "15"
        with psycopg.connect(pg.dsn) as conn:
            server = conn.execute("SHOW server_version").fetchone()
            postgis = conn.execute("SELECT postgis_lib_version()").fetchone()
            pgstac = conn.execute("SELECT pgstac.get_version()").fetchone()
            addr = conn.execute("SELECT inet_server_addr()::text").fetchone()
        assert server and str(server[0]).startswith("15.")
        assert postgis and str(postgis[0]).startswith("3.")
        assert pgstac and pgstac[0] == pg.pgstac_version == "0.10.0"
        assert addr and addr[0].startswith("127.0.0.1")
        assert pg.env["PGPORT"] == str(pg.port)
        port = pg.port
    assert not root.exists()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_cluster_rejects_wrong_password(pg_cluster: PostgresCluster) -> None:
    bad = pg_cluster.dsn.replace(pg_cluster.password, "wrong")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(bad, connect_timeout=5)


def test_missing_binaries_name_the_setup_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAVITAS_PG_BINDIR", str(tmp_path))
    with pytest.raises(PostgresClusterError, match="scripts/setup-postgres") as info:
        PostgresCluster().start()
    assert str(tmp_path) in str(info.value)


def test_open_catalog_url_and_unmigrated_database(pg_cluster: PostgresCluster) -> None:
    catalog = open_catalog(fresh_pgstac_dsn(pg_cluster), node_id="n1")
    assert isinstance(catalog, PgstacCatalog) and catalog.pgstac_version == "0.10.0"
    assert catalog.node_id == "n1" and catalog.count() == 0
    catalog.close()
    bare = pg_cluster.create_database("bare_no_pgstac", migrate=False)
    with pytest.raises(CatalogError, match="pypgstac migrate"):
        PgstacCatalog(bare)
    pg_cluster.drop_database("bare_no_pgstac")
