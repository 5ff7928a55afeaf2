"""The workflow agent's state (SQLite; written only by the workflow agent, which reads the
one-partition ``workflows.runs``): runs, step outcomes, requested instances, and per
handled event what it emitted, so a replayed event emits exactly the same again."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, request BLOB NOT NULL,
    attempts BLOB NOT NULL, cancelled INTEGER NOT NULL DEFAULT 0, status BLOB);
CREATE TABLE IF NOT EXISTS outcomes (instance_id TEXT PRIMARY KEY, run_id TEXT NOT NULL,
    outcome BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS instances (instance_id TEXT PRIMARY KEY, run_id TEXT NOT NULL,
    request BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS handled (event_id TEXT PRIMARY KEY, emits BLOB NOT NULL);
"""


class WorkflowStore:
    """Runs and their step outcomes."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def handled(self, event_id: str) -> list[dict[str, Any]] | None:
        """What handling ``event_id`` emitted, if it was handled."""
        with self._lock:
            row = self._db.execute(
                "SELECT emits FROM handled WHERE event_id=?", (event_id,)
            ).fetchone()
        return None if row is None else orjson.loads(row[0])  # type: ignore[no-any-return]

    def run(self, run_id: str) -> dict[str, Any] | None:
        """A run's request, attempts, cancelled flag and last status."""
        with self._lock:
            row = self._db.execute(
                "SELECT request, attempts, cancelled, status FROM runs WHERE run_id=?", (run_id,)
            ).fetchone()
        if row is None:
            return None
        return {
            "request": orjson.loads(row[0]),
            "attempts": orjson.loads(row[1]),
            "cancelled": bool(row[2]),
            "status": orjson.loads(row[3]) if row[3] else None,
        }

    def outcomes(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Instance id -> outcome of a run."""
        with self._lock:
            rows = self._db.execute(
                "SELECT instance_id, outcome FROM outcomes WHERE run_id=?", (run_id,)
            ).fetchall()
        return {r[0]: orjson.loads(r[1]) for r in rows}

    def instance(self, instance_id: str) -> tuple[str, dict[str, Any]] | None:
        """The run and request of a requested instance."""
        with self._lock:
            row = self._db.execute(
                "SELECT run_id, request FROM instances WHERE instance_id=?", (instance_id,)
            ).fetchone()
        return None if row is None else (row[0], orjson.loads(row[1]))

    def requested(self, run_id: str) -> set[str]:
        """Instance ids already requested for a run."""
        with self._lock:
            rows = self._db.execute(
                "SELECT instance_id FROM instances WHERE run_id=?", (run_id,)
            ).fetchall()
        return {r[0] for r in rows}

    def commit(
        self,
        event_id: str,
        emits: list[dict[str, Any]],
        *,
        run: tuple[str, dict[str, Any], dict[str, int], bool] | None = None,
        outcome: tuple[str, str, dict[str, Any]] | None = None,
        instances: list[tuple[str, str, dict[str, Any]]] = (),  # type: ignore[assignment]
        status: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        """Apply one handled event's changes and record its emits, atomically."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                if run is not None:
                    rid, req, attempts, cancelled = run
                    db.execute(
                        "INSERT INTO runs (run_id, request, attempts, cancelled) VALUES "
                        "(?, ?, ?, ?) ON CONFLICT(run_id) DO UPDATE SET request=excluded.request,"
                        " attempts=excluded.attempts, cancelled=excluded.cancelled",
                        (rid, orjson.dumps(req), orjson.dumps(attempts), int(cancelled)),
                    )
                if outcome is not None:
                    db.execute(
                        "INSERT OR IGNORE INTO outcomes VALUES (?, ?, ?)",
                        (outcome[0], outcome[1], orjson.dumps(outcome[2])),
                    )
                for iid, rid, req in instances:
                    db.execute(
                        "INSERT OR IGNORE INTO instances VALUES (?, ?, ?)",
                        (iid, rid, orjson.dumps(req)),
                    )
                if status is not None:
                    db.execute(
                        "UPDATE runs SET status=? WHERE run_id=?",
                        (orjson.dumps(status[1]), status[0]),
                    )
                db.execute(
                    "INSERT OR IGNORE INTO handled VALUES (?, ?)", (event_id, orjson.dumps(emits))
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
