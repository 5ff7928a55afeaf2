"""The node directory: every federation node this node has heard of, and when."""

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
        self._db.execute(_SCHEMA)

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

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
