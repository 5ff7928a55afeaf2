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
);
CREATE TABLE IF NOT EXISTS outcomes (
    event_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    subject TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (event_id, agent, subject)
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
        self._db.executescript(_SCHEMA)

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

    def settle(self, event_id: str, agent: str, subject: str, value: str) -> str:
        """The outcome of ``agent`` handling ``event_id`` for ``subject``: ``value`` the
        first time, the value stored then on every replay (a version, a timestamp), so a
        replayed effect repeats the original one exactly."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO outcomes VALUES (?, ?, ?, ?)",
                (event_id, agent, subject, value),
            )
            row = self._db.execute(
                "SELECT value FROM outcomes WHERE event_id = ? AND agent = ? AND subject = ?",
                (event_id, agent, subject),
            ).fetchone()
        return str(row[0])

    def settled(self, event_id: str, agent: str, subject: str) -> str | None:
        """The outcome :meth:`settle` stored for (``event_id``, ``agent``, ``subject``),
        or None if there is none yet (read only)."""
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM outcomes WHERE event_id = ? AND agent = ? AND subject = ?",
                (event_id, agent, subject),
            ).fetchone()
        return None if row is None else str(row[0])

    def subjects(self, agent: str, prefix: str) -> set[str]:
        """Distinct subjects ``agent`` recorded effects on that start with ``prefix``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT subject FROM effects "
                "WHERE agent = ? AND substr(subject, 1, ?) = ?",
                (agent, len(prefix), prefix),
            ).fetchall()
        return {str(r[0]) for r in rows}

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
