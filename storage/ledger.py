"""The effect ledger: which event ids an agent has applied.

Agents record an effect once per event id (``INSERT OR IGNORE``), so a replay after a
crash changes nothing. SQLite in WAL mode lets several worker processes of one node
share the ledger.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS effects (
    event_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    subject TEXT NOT NULL,
    applied_at REAL NOT NULL,
    replays INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, agent)
)
"""


class EffectLedger:
    """A persistent set of (event id, agent) pairs with the subject they touched."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def record(self, event_id: str, agent: str, subject: str = "") -> bool:
        """Record an effect; True if it is new, False if it was already applied.

        A repeat leaves the effect as it was and only counts the replay.
        """
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO effects VALUES (?, ?, ?, ?, 0)",
                (event_id, agent, subject, time.time()),
            )
            if cur.rowcount == 1:
                return True
            self._db.execute(
                "UPDATE effects SET replays = replays + 1 WHERE event_id = ? AND agent = ?",
                (event_id, agent),
            )
            return False

    def seen(self, event_id: str, agent: str) -> bool:
        """True if the effect of ``event_id`` by ``agent`` was applied."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM effects WHERE event_id = ? AND agent = ?", (event_id, agent)
            ).fetchone()
        return row is not None

    def count(self, agent: str | None = None) -> int:
        """Number of recorded effects (of one agent, or all)."""
        with self._lock:
            if agent is None:
                row = self._db.execute("SELECT COUNT(*) FROM effects").fetchone()
            else:
                row = self._db.execute(
                    "SELECT COUNT(*) FROM effects WHERE agent = ?", (agent,)
                ).fetchone()
        return int(row[0])

    def replays(self, agent: str | None = None) -> int:
        """How many times an already-applied effect was offered again (at-least-once)."""
        with self._lock:
            if agent is None:
                row = self._db.execute("SELECT COALESCE(SUM(replays), 0) FROM effects").fetchone()
            else:
                row = self._db.execute(
                    "SELECT COALESCE(SUM(replays), 0) FROM effects WHERE agent = ?", (agent,)
                ).fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
