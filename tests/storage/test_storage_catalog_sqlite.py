# ruff: noqa: F811  (pytest fixtures imported from tests.fixtures.catalogs)
"""SQLite specifics: persistence, several handles on one file, unsupported CQL2 ops."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from gravitas.storage.catalog import SearchParams, UnsupportedFilterError
from gravitas.storage.catalog.factory import open_catalog
from gravitas.storage.catalog.sqlite import SQLiteCatalog
from tests.fixtures.catalogs import pc_items  # noqa: F401


def test_persistent_and_shared_between_handles(tmp_path: Path, pc_items: list[dict]) -> None:
    path = tmp_path / "c.sqlite"
    a = SQLiteCatalog(path, node_id="n1")
    b = open_catalog(f"sqlite://{path}", node_id="n1")
    errors: list[BaseException] = []

    def write(cat: Any, items: list[dict]) -> None:
        try:
            for it in items:
                cat.upsert_item(it)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(a, pc_items[::2])),
        threading.Thread(target=write, args=(b, pc_items[1::2])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert b.count() == a.count() == len(pc_items)
    a.close()
    b.close()
    reopened = open_catalog(path, node_id="n1")
    assert reopened.count() == len(pc_items)
    assert reopened.search(SearchParams(limit=3)).matched == len(pc_items)
    reopened.close()


def test_unsupported_operator_is_named(tmp_path: Path) -> None:
    cat = SQLiteCatalog(tmp_path / "c.sqlite")
    flt = {
        "op": "t_intersects",
        "args": [{"property": "datetime"}, {"interval": ["2020-01-01", ".."]}],
    }
    with pytest.raises(UnsupportedFilterError, match="t_intersects"):
        cat.search(SearchParams(filter=flt))
    cat.close()
