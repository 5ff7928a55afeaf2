"""The persistent feature index: one SQLite file, rows keyed ``layer | depth | morton | fid``.

``features`` is a WITHOUT ROWID table whose primary key is the grid key, so a Morton
range of one depth is one contiguous B-tree scan (the same idea as the block keys of
:mod:`gravitas.storage.keys`; the layer id is the same BLAKE2b-64 of the name, stored
signed because SQLite integers are). Geometry is WKB, properties are JSON.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from gravitas.schemas.errors import NotFoundError, StorageError
from gravitas.storage.keys import layer_id

__all__ = ["FeatureIndex", "FeatureRow", "signed_layer_id"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS layers (
    name TEXT PRIMARY KEY,
    layer_id INTEGER NOT NULL UNIQUE,
    meta TEXT NOT NULL,
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS features (
    layer INTEGER NOT NULL,
    depth INTEGER NOT NULL,
    morton INTEGER NOT NULL,
    fid INTEGER NOT NULL,
    level INTEGER NOT NULL,
    feature_id TEXT NOT NULL,
    class_code INTEGER NOT NULL,
    geom BLOB NOT NULL,
    props TEXT NOT NULL,
    PRIMARY KEY (layer, depth, morton, fid)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS features_by_fid ON features (layer, fid);
"""
_COLS = "fid, feature_id, level, morton, class_code, geom, props"


class FeatureRow(NamedTuple):
    """One row of the index as stored (geometry still WKB, properties JSON text)."""

    fid: int
    feature_id: str
    """JSON text of the feature id (a number or a string)."""
    level: int
    morton: int
    class_code: int
    geom: bytes
    props: str


def signed_layer_id(name: str) -> int:
    """:func:`gravitas.storage.keys.layer_id` folded into SQLite's signed 64-bit range."""
    lid = layer_id(name)
    return lid - (1 << 64) if lid >= 1 << 63 else lid


class FeatureIndex:
    """SQLite file of layers and their grid-keyed features (one connection, shared by
    threads under a lock; other processes may open the same file)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open the vector index {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._lock, self._db:
                yield self._db
        except sqlite3.Error as exc:
            raise StorageError(f"vector index {self.path}: {exc}") from exc

    def put_layer(self, name: str, meta: dict[str, Any], rows: Iterable[tuple[Any, ...]]) -> None:
        """Replace layer ``name`` with ``meta`` and feature rows
        ``(depth, morton, fid, level, feature_id_json, class_code, wkb, props_json)``."""
        lid = signed_layer_id(name)
        with self._tx() as db:
            db.execute("DELETE FROM features WHERE layer = ?", (lid,))
            db.execute("DELETE FROM layers WHERE name = ?", (name,))
            db.execute(
                "INSERT INTO layers (name, layer_id, meta, added_at) VALUES (?, ?, ?, ?)",
                (name, lid, json.dumps(meta), time.time()),
            )
            db.executemany(
                "INSERT INTO features (layer, depth, morton, fid, level, feature_id, "
                "class_code, geom, props) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((lid, *row) for row in rows),
            )

    def drop_layer(self, name: str) -> None:
        """Delete a layer and its features (NotFoundError if absent)."""
        self.meta(name)
        lid = signed_layer_id(name)
        with self._tx() as db:
            db.execute("DELETE FROM features WHERE layer = ?", (lid,))
            db.execute("DELETE FROM layers WHERE name = ?", (name,))

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            with self._lock:
                return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"vector index {self.path}: {exc}") from exc

    def has_layer(self, name: str) -> bool:
        """True when the layer is stored."""
        return bool(self._read("SELECT 1 FROM layers WHERE name = ?", (name,)))

    def meta(self, name: str) -> dict[str, Any]:
        """The stored metadata of a layer."""
        rows = self._read("SELECT meta FROM layers WHERE name = ?", (name,))
        if not rows:
            known = ", ".join(self.names()) or "none"
            raise NotFoundError(
                f"no vector layer {name!r} in {self.path}; known layers: {known} "
                "(add one with `gravitas vector add`)"
            )
        meta: dict[str, Any] = json.loads(rows[0][0])
        return meta

    def names(self) -> list[str]:
        """Layer names, sorted."""
        return [r[0] for r in self._read("SELECT name FROM layers ORDER BY name", ())]

    def depths(self, name: str) -> list[int]:
        """Distinct key depths of a layer's features."""
        rows = self._read(
            "SELECT DISTINCT depth FROM features WHERE layer = ? ORDER BY depth",
            (signed_layer_id(name),),
        )
        return [int(r[0]) for r in rows]

    def scan(self, name: str, depth: int, ranges: Iterable[tuple[int, int]]) -> list[FeatureRow]:
        """Rows of one depth whose Morton code lies in any inclusive range."""
        lid = signed_layer_id(name)
        sql = (
            f"SELECT {_COLS} FROM features WHERE layer = ? AND depth = ? AND morton BETWEEN ? AND ?"
        )
        out: list[FeatureRow] = []
        for lo, hi in ranges:
            out.extend(FeatureRow(*r) for r in self._read(sql, (lid, depth, lo, hi)))
        return out

    def all_rows(self, name: str) -> list[FeatureRow]:
        """Every row of a layer in fid order."""
        rows = self._read(
            f"SELECT {_COLS} FROM features WHERE layer = ? ORDER BY fid",
            (signed_layer_id(name),),
        )
        return [FeatureRow(*r) for r in rows]
