"""Which inbound ``webhook-id`` s a node has published (SQLite in its data dir, WAL, shared
by its worker processes; one statement per write, so concurrent edges agree).

The edge publishes first and records after: a crash in between makes the provider's
redelivery publish the same event again with the same event id (derived from the
webhook-id), which the agents' effect ledgers apply once. A redelivery after the record
publishes nothing.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    source TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (source, webhook_id)
)
"""


class SeenWebhooks:
    """A persistent set of (source, webhook-id) with the event each became."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def get(self, source: str, webhook_id: str) -> tuple[str, str] | None:
        """(event id, topic) of an already published call."""
        with self._lock:
            row = self._db.execute(
                "SELECT event_id, topic FROM seen WHERE source = ? AND webhook_id = ?",
                (source, webhook_id),
            ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def record(self, source: str, webhook_id: str, event_id: str, topic: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO seen VALUES (?, ?, ?, ?, ?)",
                (source, webhook_id, event_id, topic, time.time()),
            )

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM seen").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
