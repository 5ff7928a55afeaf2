"""The node directory: every federation node this node has heard of, and when; plus
tombstones of retracted items, so a replayed older registration cannot resurrect one."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY,
    api_url TEXT NOT NULL,
    asset_base_url TEXT NOT NULL,
    last_seen REAL NOT NULL,
    registrations INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tombstones (
    collection TEXT NOT NULL,
    item_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (collection, item_id)
)
"""


@dataclass(frozen=True)
class NodeInfo:
    """One known node."""

    node_id: str
    api_url: str
    asset_base_url: str
    last_seen: float
    registrations: int


class NodeDirectory:
    """A persistent table of known nodes (SQLite, shared by a node's workers)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def seen(
        self, node_id: str, api_url: str, asset_base_url: str = "", when: float | None = None
    ) -> None:
        """Record that ``node_id`` spoke (a registration or retraction)."""
        stamp = time.time() if when is None else when
        with self._lock:
            self._db.execute(
                "INSERT INTO nodes VALUES (?, ?, ?, ?, 1) ON CONFLICT(node_id) DO UPDATE SET "
                "api_url = excluded.api_url, asset_base_url = excluded.asset_base_url, "
                "last_seen = MAX(last_seen, excluded.last_seen), registrations = registrations + 1",
                (node_id, api_url, asset_base_url, stamp),
            )

    def get(self, node_id: str) -> NodeInfo | None:
        """A node by id, if known."""
        with self._lock:
            row = self._db.execute("SELECT * FROM nodes WHERE node_id = ?", (node_id,)).fetchone()
        return NodeInfo(*row) if row else None

    def all(self) -> list[NodeInfo]:
        """Every known node, by id."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM nodes ORDER BY node_id").fetchall()
        return [NodeInfo(*r) for r in rows]

    def tombstone(self, collection: str, item_id: str, version: int) -> None:
        """Remember that an item was retracted at ``version``."""
        with self._lock:
            self._db.execute(
                "INSERT INTO tombstones VALUES (?, ?, ?) ON CONFLICT(collection, item_id) "
                "DO UPDATE SET version = MAX(version, excluded.version)",
                (collection, item_id, version),
            )

    def retracted_at(self, collection: str, item_id: str) -> int:
        """The version an item was retracted at (0 if never)."""
        with self._lock:
            row = self._db.execute(
                "SELECT version FROM tombstones WHERE collection = ? AND item_id = ?",
                (collection, item_id),
            ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
