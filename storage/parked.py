"""Requests parked until the items they need are onboarded (SQLite under the data dir).

Only the parking agent writes here, and it reads a one-partition topic
(``onboard.results``): one writer. Each event is applied in one transaction that also
stores what the event decided (resume or fail which requests), keyed by the event id:
a replayed event gets the same decisions again and changes nothing, and a crash between
the transaction and publishing its outputs is repaired by the replay. The state is on
disk, so parked requests survive a restart.

Outcomes are kept per (request, item): a request is resumed only by the outcome of its
own onboarding request, never by an older failure of the same item.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

__all__ = ["Decision", "ParkedRequests"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS parked (
        request_id TEXT PRIMARY KEY,
        topic TEXT NOT NULL,
        request BLOB NOT NULL,
        waiting TEXT NOT NULL,
        state TEXT NOT NULL,
        parks INTEGER NOT NULL,
        updated REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS outcomes (
        request_id TEXT NOT NULL,
        collection TEXT NOT NULL,
        item_id TEXT NOT NULL,
        ok INTEGER NOT NULL,
        cause TEXT NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (request_id, collection, item_id)
    )""",
    """CREATE TABLE IF NOT EXISTS decisions (
        event_id TEXT PRIMARY KEY,
        decided TEXT NOT NULL,
        updated REAL NOT NULL
    )""",
)

KEEP_S = 24 * 3600.0
"""Settled requests, outcomes and decisions are forgotten after this long."""


@dataclass(frozen=True)
class Decision:
    """What to do with one parked request."""

    kind: Literal["resume", "fail"]
    request_id: str
    topic: str
    request: dict[str, Any]
    cause: str = ""


Item = tuple[str, str]


class ParkedRequests:
    """The parked requests of a node and the onboarding outcomes they wait for."""

    def __init__(self, path: Path, max_parks: int = 3) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_parks = max_parks
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for ddl in _SCHEMA:
            self._db.execute(ddl)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def park(
        self,
        event_id: str,
        request_id: str,
        topic: str,
        request: dict[str, Any],
        items: Iterable[Item],
    ) -> list[Decision]:
        """Park a request on ``items``; decides at once if their outcomes are known."""
        wanted = sorted(set(items))
        with self._transaction(event_id) as tx:
            if tx.replayed is not None:
                return tx.replayed
            now = time.time()
            row = self._db.execute(
                "SELECT parks FROM parked WHERE request_id = ?", (request_id,)
            ).fetchone()
            parks = (int(row[0]) if row else 0) + 1
            blob = orjson.dumps(request)
            decided: list[Decision] = []
            outcomes = self._outcomes(request_id)
            failed = [(i, outcomes[i][1]) for i in wanted if i in outcomes and not outcomes[i][0]]
            waiting = [i for i in wanted if i not in outcomes]
            state = "waiting"
            if parks > self.max_parks:
                state = "failed"
                decided.append(
                    Decision(
                        "fail",
                        request_id,
                        topic,
                        request,
                        f"onboarding did not settle after {self.max_parks} rounds "
                        f"(still waiting for {_names(waiting)})",
                    )
                )
            elif failed:
                state = "failed"
                item, cause = failed[0]
                decided.append(Decision("fail", request_id, topic, request, _failed(item, cause)))
            elif not waiting:
                state = "resumed"
                decided.append(Decision("resume", request_id, topic, request))
            self._db.execute(
                "INSERT OR REPLACE INTO parked VALUES (?, ?, ?, ?, ?, ?, ?)",
                (request_id, topic, blob, orjson.dumps(waiting), state, parks, now),
            )
            tx.decided = decided
            return decided

    def outcome(
        self,
        event_id: str,
        request_id: str,
        item: Item,
        ok: bool,
        cause: str = "",
    ) -> list[Decision]:
        """Record how onboarding ``item`` for ``request_id`` ended; resume or fail the
        request if it waits for it."""
        with self._transaction(event_id) as tx:
            if tx.replayed is not None:
                return tx.replayed
            now = time.time()
            self._db.execute(
                "INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?, ?, ?, ?)",
                (request_id, item[0], item[1], int(ok), cause, now),
            )
            row = self._db.execute(
                "SELECT topic, request, waiting FROM parked WHERE request_id = ? AND state = ?",
                (request_id, "waiting"),
            ).fetchone()
            decided: list[Decision] = []
            if row is not None:
                topic, blob, waiting_json = str(row[0]), bytes(row[1]), row[2]
                waiting = [(str(c), str(i)) for c, i in orjson.loads(waiting_json)]
                if item in waiting:
                    request = orjson.loads(blob)
                    waiting.remove(item)
                    state = "waiting"
                    if not ok:
                        state = "failed"
                        decided.append(
                            Decision("fail", request_id, topic, request, _failed(item, cause))
                        )
                    elif not waiting:
                        state = "resumed"
                        decided.append(Decision("resume", request_id, topic, request))
                    self._db.execute(
                        "UPDATE parked SET waiting = ?, state = ?, updated = ? "
                        "WHERE request_id = ?",
                        (orjson.dumps(waiting), state, now, request_id),
                    )
            tx.decided = decided
            return decided

    def waiting(self) -> dict[str, list[Item]]:
        """Request id -> the items it still waits for (the requests parked now)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT request_id, waiting FROM parked WHERE state = 'waiting'"
            ).fetchall()
        return {str(r): [(str(c), str(i)) for c, i in orjson.loads(w)] for r, w in rows}

    def state(self, request_id: str) -> str | None:
        """``waiting``, ``resumed`` or ``failed`` (None if never parked)."""
        with self._lock:
            row = self._db.execute(
                "SELECT state FROM parked WHERE request_id = ?", (request_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def _outcomes(self, request_id: str) -> dict[Item, tuple[bool, str]]:
        rows = self._db.execute(
            "SELECT collection, item_id, ok, cause FROM outcomes WHERE request_id = ?",
            (request_id,),
        ).fetchall()
        return {(str(c), str(i)): (bool(ok), str(cause)) for c, i, ok, cause in rows}

    def _transaction(self, event_id: str) -> _Transaction:
        return _Transaction(self, event_id)


class _Transaction:
    """``BEGIN IMMEDIATE`` .. ``COMMIT`` that replays an event's stored decisions."""

    def __init__(self, store: ParkedRequests, event_id: str) -> None:
        self.store = store
        self.event_id = event_id
        self.replayed: list[Decision] | None = None
        self.decided: list[Decision] = []

    def __enter__(self) -> _Transaction:
        self.store._lock.acquire()
        db = self.store._db
        try:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT decided FROM decisions WHERE event_id = ?", (self.event_id,)
            ).fetchone()
        except BaseException:
            self.store._lock.release()
            raise
        if row is not None:
            self.replayed = [Decision(**d) for d in orjson.loads(row[0])]
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        db = self.store._db
        try:
            if exc_type is not None:
                db.execute("ROLLBACK")
                return
            if self.replayed is None:
                now = time.time()
                decided = [d.__dict__ for d in self.decided]
                db.execute(
                    "INSERT INTO decisions VALUES (?, ?, ?)",
                    (self.event_id, orjson.dumps(decided), now),
                )
                old = now - KEEP_S
                db.execute("DELETE FROM decisions WHERE updated < ?", (old,))
                db.execute("DELETE FROM outcomes WHERE updated < ?", (old,))
                db.execute("DELETE FROM parked WHERE state != 'waiting' AND updated < ?", (old,))
            db.execute("COMMIT")
        finally:
            self.store._lock.release()


def _names(items: Iterable[Item]) -> str:
    return ", ".join(f"{c}/{i}" for c, i in items) or "nothing"


def _failed(item: Item, cause: str) -> str:
    return f"onboarding {item[0]}/{item[1]} failed: {cause}"
