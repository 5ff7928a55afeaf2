"""The layer registry: name -> dtype, nodata, native level, categorical, times, blocks.

One SQLite file per node (WAL mode), so the worker processes of a node share it safely.
Each thread keeps one connection per registry (opened on first use, reopened after a
fork): opening a connection and switching it to WAL on every call cost more than the
queries. ``synchronous=NORMAL`` (safe with WAL: a crash may lose the last commits, never
corrupt the file; ingest replays rewrite them). Every write is an idempotent upsert
keyed by (layer, timestamp, scene), so replaying an ingest changes nothing.
"""

from __future__ import annotations

import builtins
import math
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gravitas.storage.pixels.errors import LayerNotFoundError, LayerRegistryError

__all__ = ["LayerInfo", "LayerRegistry", "top_level_of"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS layers (
    name TEXT PRIMARY KEY,
    dtype TEXT NOT NULL,
    nodata TEXT,
    native_level INTEGER NOT NULL,
    top_level INTEGER NOT NULL,
    categorical INTEGER NOT NULL,
    collection TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS layer_times (
    name TEXT NOT NULL,
    ts INTEGER NOT NULL,
    scene_id TEXT NOT NULL,
    blocks INTEGER NOT NULL,
    PRIMARY KEY (name, ts, scene_id)
);
"""


def top_level_of(native_level: int) -> int:
    """Coarsest overview level kept for a layer: 8 levels up, at most to level 1."""
    return max(1, native_level - 8)


@dataclass(frozen=True)
class LayerInfo:
    """What the registry knows about one layer."""

    name: str
    dtype: str
    """numpy dtype string of the stored blocks (``float32`` for continuous layers)."""
    nodata: float | int | None
    native_level: int
    top_level: int
    """Coarsest level with overviews (arrays and statistics)."""
    categorical: bool
    collection: str = ""
    t_min: datetime | None = None
    t_max: datetime | None = None
    times: int = 0
    """Number of distinct timestamps."""
    blocks: int = 0
    """Native-level blocks written (summed over timestamps and scenes)."""


def _nodata_text(nodata: float | int | None) -> str | None:
    if nodata is None:
        return None
    return "nan" if isinstance(nodata, float) and math.isnan(nodata) else repr(nodata)


def _nodata_value(text: str | None) -> float | int | None:
    if text is None:
        return None
    if text == "nan":
        return math.nan
    return float(text) if any(c in text for c in ".eE") else int(text)


class LayerRegistry:
    """The node's layer table in ``path`` (SQLite)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: builtins.list[sqlite3.Connection] = []
        with self._conn() as db:
            db.executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a fork: SQLite handles do not survive)."""
        local = self._local
        db: sqlite3.Connection | None = getattr(local, "db", None)
        if db is not None and local.pid == os.getpid():
            return db
        try:
            db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise LayerRegistryError(f"cannot open layer registry {self.path}: {exc}") from exc
        local.db, local.pid = db, os.getpid()
        with self._lock:
            self._opened.append(db)
        return db

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        try:
            with db:  # one transaction: commit, or roll back on error
                yield db
        except sqlite3.Error as exc:
            raise LayerRegistryError(f"layer registry {self.path} failed: {exc}") from exc

    def close(self) -> None:
        """Close every thread's connection (later calls open new ones)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for db in opened:
            with suppress(sqlite3.Error):
                db.close()
        self._local = threading.local()

    def record(
        self,
        name: str,
        *,
        dtype: str,
        nodata: float | int | None,
        native_level: int,
        categorical: bool,
        timestamp: int,
        scene_id: str,
        blocks: int,
        collection: str = "",
    ) -> None:
        """Upsert a layer and the blocks one scene wrote at one timestamp."""
        with self._conn() as db:
            db.execute(
                "INSERT INTO layers VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING",
                (
                    name,
                    dtype,
                    _nodata_text(nodata),
                    native_level,
                    top_level_of(native_level),
                    int(categorical),
                    collection,
                ),
            )
            db.execute(
                "INSERT OR REPLACE INTO layer_times VALUES (?, ?, ?, ?)",
                (name, timestamp, scene_id, blocks),
            )

    def exists(self, name: str) -> bool:
        """True if the layer has been indexed (cheaper than :meth:`get`)."""
        with self._conn() as db:
            return db.execute("SELECT 1 FROM layers WHERE name = ?", (name,)).fetchone() is not None

    def get(self, name: str) -> LayerInfo:
        """The layer's info, or :class:`LayerNotFoundError` naming the known layers."""
        for info in self.list(name):
            return info
        known = ", ".join(i.name for i in self.list()[:20]) or "(none)"
        raise LayerNotFoundError(
            f"unknown layer {name!r}; known layers: {known} (ingest it first: gravitas ingest)"
        )

    def list(self, name: str | None = None) -> builtins.list[LayerInfo]:
        """Every layer (or the one named), sorted by name."""
        sql = (
            "SELECT l.name, dtype, nodata, native_level, top_level, categorical, collection, "
            "MIN(t.ts), MAX(t.ts), COUNT(DISTINCT t.ts), COALESCE(SUM(t.blocks), 0) "
            "FROM layers l LEFT JOIN layer_times t ON t.name = l.name "
        )
        args: tuple[str, ...] = ()
        if name is not None:
            sql += "WHERE l.name = ? "
            args = (name,)
        sql += "GROUP BY l.name ORDER BY l.name"
        with self._conn() as db:
            rows = db.execute(sql, args).fetchall()
        return [
            LayerInfo(
                name=r[0],
                dtype=r[1],
                nodata=_nodata_value(r[2]),
                native_level=r[3],
                top_level=r[4],
                categorical=bool(r[5]),
                collection=r[6],
                t_min=datetime.fromtimestamp(r[7], UTC) if r[7] is not None else None,
                t_max=datetime.fromtimestamp(r[8], UTC) if r[8] is not None else None,
                times=r[9],
                blocks=r[10],
            )
            for r in rows
        ]

    def times(self, name: str, t0: int | None = None, t1: int | None = None) -> builtins.list[int]:
        """Sorted distinct epoch-second timestamps of a layer, optionally in ``[t0, t1]``."""
        lo = t0 if t0 is not None else -(1 << 62)
        hi = t1 if t1 is not None else 1 << 62
        with self._conn() as db:
            rows = db.execute(
                "SELECT DISTINCT ts FROM layer_times WHERE name = ? AND ts BETWEEN ? AND ? "
                "ORDER BY ts",
                (name, lo, hi),
            ).fetchall()
        return [int(r[0]) for r in rows]
