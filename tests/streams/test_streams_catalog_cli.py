# ruff: noqa: F811  (pytest fixtures imported from tests.fixtures.catalogs)
"""``gravitas catalog search`` against a live node edge holding real Planetary Computer items."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from gravitas.streams.cli.main import app
from tests.fixtures.catalogs import pc_items  # noqa: F401
from tests.fixtures.stac_api import running_node


def test_catalog_search_cli(tmp_path: Path, pc_items: list[dict]) -> None:
    with running_node(tmp_path) as node:
        for it in pc_items:
            node.services.catalog.upsert_item(it)
        runner = CliRunner()
        found = runner.invoke(
            app,
            [
                "catalog",
                "search",
                "--data",
                str(tmp_path),
                "--filter",
                "eo:cloud_cover < 10",
                "--json",
            ],
        )
        assert found.exit_code == 0, found.output
        lines = [orjson.loads(x) for x in found.stdout.splitlines() if x.startswith("{")]
        expected = {i["id"] for i in pc_items if i["properties"].get("eo:cloud_cover", 100) < 10}
        assert {i["id"] for i in lines} == expected
        table = runner.invoke(
            app, ["catalog", "search", "--url", f"{node.edge_url}/stac", "--collections", "naip"]
        )
        assert table.exit_code == 0 and "4 of 4 items" in table.stdout


def test_catalog_collections_cli_lists_what_items_made(
    tmp_path: Path, pc_items: list[dict]
) -> None:
    with running_node(tmp_path) as node:
        for it in pc_items:
            node.services.catalog.upsert_item(it)  # no collection was ever created by hand
        runner = CliRunner()
        listed = runner.invoke(app, ["catalog", "collections", "--data", str(tmp_path), "--json"])
        assert listed.exit_code == 0, listed.output
        colls = [orjson.loads(x) for x in listed.stdout.splitlines() if x.startswith("{")]
        assert sorted(c["id"] for c in colls) == sorted({i["collection"] for i in pc_items})
        s2 = next(c for c in colls if c["id"] == "sentinel-2-l2a")
        assert "B04" in s2["item_assets"] and s2["summaries"]["eo:bands"]
        table = runner.invoke(app, ["catalog", "collections", "--url", f"{node.edge_url}/stac"])
        assert table.exit_code == 0, table.output
        assert "12 collections" in table.stdout and "naip" in table.stdout
        missing = runner.invoke(app, ["catalog", "collections", "--url", "http://127.0.0.1:9/stac"])
        assert missing.exit_code != 0
        assert "cannot reach the STAC API at http://127.0.0.1:9/stac" in str(missing.exception)
