"""Persistent openEO state of a node (SQLite under the data dir, WAL, shared by workers).

* ``udps``: user-defined processes, one row per (user, id, version); a PUT adds a
  version, a DELETE adds a tombstone version, reads take the newest.
* ``jobs``: batch job definitions (written by the edge: create, patch, delete).
* ``job_keys``: the idempotency key a job was created with, per user, and the SHA-256 of
  the create body, so a repeated create returns the same job (written with the job, in
  one transaction).
* ``job_status``: the state of each job's runs, written only by the job agent from the
  job events (requested -> progress -> finished/failed), so a restarted node rebuilds it
  by replaying the events; ``job_logs`` their log lines.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS udps (
    user TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    doc BLOB, created REAL NOT NULL,
    PRIMARY KEY (user, id, version)
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, user TEXT NOT NULL, doc BLOB NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL, deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS job_keys (
    user TEXT NOT NULL, key TEXT NOT NULL, job_id TEXT NOT NULL, digest TEXT NOT NULL,
    PRIMARY KEY (user, key)
);
CREATE TABLE IF NOT EXISTS job_status (
    job_id TEXT PRIMARY KEY, run TEXT NOT NULL, status TEXT NOT NULL,
    progress REAL NOT NULL, updated REAL NOT NULL, result BLOB, error TEXT
);
CREATE TABLE IF NOT EXISTS job_logs (
    job_id TEXT NOT NULL, seq INTEGER NOT NULL, level TEXT NOT NULL,
    message TEXT NOT NULL, time TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""

FINAL = ("finished", "error", "canceled")


class OpenEOStore:
    """UDPs, jobs and job states of one node."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def for_data_dir(cls, data_dir: Path | str) -> OpenEOStore:
        return cls(Path(data_dir) / "openeo.sqlite")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---------------------------------------------------------------- udps
    def put_udp(self, user: str, udp_id: str, doc: dict[str, Any] | None) -> int:
        """Store a new version (``None``: a deletion); returns the version."""
        with self._lock:
            row = self._db.execute(
                "SELECT MAX(version) FROM udps WHERE user = ? AND id = ?", (user, udp_id)
            ).fetchone()
            version = int(row[0] or 0) + 1
            blob = orjson.dumps(doc) if doc is not None else None
            self._db.execute(
                "INSERT INTO udps VALUES (?, ?, ?, ?, ?)",
                (user, udp_id, version, blob, time.time()),
            )
            return version

    def get_udp(self, user: str, udp_id: str) -> tuple[int, dict[str, Any]] | None:
        """``(version, doc)`` of the newest version, or None (missing or deleted)."""
        with self._lock:
            row = self._db.execute(
                "SELECT version, doc FROM udps WHERE user = ? AND id = ? "
                "ORDER BY version DESC LIMIT 1",
                (user, udp_id),
            ).fetchone()
        if row is None or row[1] is None:
            return None
        return int(row[0]), orjson.loads(row[1])

    def list_udps(self, user: str) -> list[tuple[str, int, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, version, doc FROM udps u WHERE user = ? AND version = "
                "(SELECT MAX(version) FROM udps v WHERE v.user = u.user AND v.id = u.id) "
                "ORDER BY id",
                (user,),
            ).fetchall()
        return [(r[0], int(r[1]), orjson.loads(r[2])) for r in rows if r[2] is not None]

    def count_udps(self) -> int:
        """Stored versions of every user's processes (deletions included)."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM udps").fetchone()[0])

    # ---------------------------------------------------------------- jobs
    def create_job(self, job_id: str, user: str, doc: dict[str, Any]) -> None:
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO jobs VALUES (?, ?, ?, ?, ?, 0)",
                (job_id, user, orjson.dumps(doc), now, now),
            )

    def create_job_once(
        self, job_id: str, user: str, doc: dict[str, Any], key: str, digest: str
    ) -> tuple[str, str]:
        """Create job ``job_id`` under idempotency key ``key`` of ``user``, unless that key
        was used before: ``(job id, digest)`` of the job the key names (the new one, or
        the earlier one and its create body's digest, for the caller to compare)."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # one creator per key across processes
            try:
                row = self._db.execute(
                    "SELECT job_id, digest FROM job_keys WHERE user = ? AND key = ?", (user, key)
                ).fetchone()
                if row is None:
                    self._db.execute(
                        "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, 0)",
                        (job_id, user, orjson.dumps(doc), now, now),
                    )
                    self._db.execute(
                        "INSERT INTO job_keys VALUES (?, ?, ?, ?)", (user, key, job_id, digest)
                    )
                    row = (job_id, digest)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return str(row[0]), str(row[1])

    def get_job(self, job_id: str) -> tuple[str, dict[str, Any], float, float] | None:
        """``(user, doc, created, updated)`` of a job that is not deleted."""
        with self._lock:
            row = self._db.execute(
                "SELECT user, doc, created, updated FROM jobs WHERE job_id = ? AND deleted = 0",
                (job_id,),
            ).fetchone()
        return (row[0], orjson.loads(row[1]), row[2], row[3]) if row else None

    def update_job(self, job_id: str, doc: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET doc = ?, updated = ? WHERE job_id = ?",
                (orjson.dumps(doc), time.time(), job_id),
            )

    def cancel_requested(self, job_id: str, run_id: str) -> bool:
        """Whether the edge asked to cancel run ``run_id`` (or deleted the job)."""
        with self._lock:
            row = self._db.execute(
                "SELECT doc, deleted FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        if row is None or row[1]:
            return True
        return bool(orjson.loads(row[0]).get("cancel_run") == run_id)

    def delete_job(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET deleted = 1 WHERE job_id = ?", (job_id,))

    def list_jobs(self, user: str) -> list[tuple[str, dict[str, Any], float, float]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT job_id, doc, created, updated FROM jobs WHERE user = ? AND deleted = 0 "
                "ORDER BY created",
                (user,),
            ).fetchall()
        return [(r[0], orjson.loads(r[1]), r[2], r[3]) for r in rows]

    # ---------------------------------------------------------------- job states
    def status(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT run, status, progress, updated, result, error FROM job_status "
                "WHERE job_id = ?",
                (job_id,),
            ).fetchone()
        if row is None:
            return None
        return {
            "run": row[0],
            "status": row[1],
            "progress": row[2],
            "updated": row[3],
            "result": orjson.loads(row[4]) if row[4] else None,
            "error": row[5],
        }

    def set_status(
        self,
        job_id: str,
        run: str,
        status: str,
        progress: float,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Record a state of run ``run``; a final state of the same run is never
        overwritten (replayed events change nothing). Returns whether it changed."""
        with self._lock:
            row = self._db.execute(
                "SELECT run, status FROM job_status WHERE job_id = ?", (job_id,)
            ).fetchone()
            if row is not None and row[0] == run and row[1] in FINAL:
                return False
            if row is not None and row[0] != run and status != "queued":
                return False  # an event of an older run
            self._db.execute(
                "INSERT INTO job_status VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(job_id) DO "
                "UPDATE SET run = excluded.run, status = excluded.status, progress = "
                "excluded.progress, updated = excluded.updated, result = excluded.result, "
                "error = excluded.error",
                (
                    job_id,
                    run,
                    status,
                    progress,
                    time.time(),
                    orjson.dumps(result) if result is not None else None,
                    error,
                ),
            )
            return True

    def log(self, job_id: str, seq: int, level: str, message: str, when: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO job_logs VALUES (?, ?, ?, ?, ?)",
                (job_id, seq, level, message[:4000], when),
            )

    def logs(self, job_id: str, after: int = -1, limit: int = 1000) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, level, message, time FROM job_logs WHERE job_id = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (job_id, after, limit),
            ).fetchall()
        return [{"id": str(r[0]), "level": r[1], "message": r[2], "time": r[3]} for r in rows]
