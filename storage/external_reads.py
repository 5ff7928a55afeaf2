"""Which External References this node has indexed from their source, and at which version.

An External Reference stays what its owner registered: its STAC item never changes
when a request reads it (no ``gravitas:onboarded`` flag, no new version, nothing in the
object store). The pixels read from the source are indexed into the block store, and
this table says so, keyed by item and version: a new registration of the item (new
hrefs) is read again. It is written when the read's staged blocks are merged (by the
overview agent, once per onboarding round; a record is idempotent); SQLite in WAL mode
lets the node's worker processes share it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS external_reads (
    collection TEXT NOT NULL,
    item_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    hrefs TEXT NOT NULL,
    read_at REAL NOT NULL,
    PRIMARY KEY (collection, item_id, version)
)
"""


class ExternalReads:
    """A persistent set of (collection, item id, version) read from their source."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            yield db

    def record(self, collection: str, item_id: str, version: int, hrefs: Iterable[str]) -> None:
        """Note that this version of the item was indexed from ``hrefs`` (idempotent)."""
        with self._db() as db:
            db.execute(
                "INSERT OR IGNORE INTO external_reads VALUES (?, ?, ?, ?, ?)",
                (collection, item_id, version, "\n".join(hrefs), time.time()),
            )

    def read(self, collection: str, item_id: str, version: int) -> bool:
        """True if this version of the item was indexed from its source."""
        with self._db() as db:
            row = db.execute(
                "SELECT 1 FROM external_reads WHERE collection = ? AND item_id = ? AND version = ?",
                (collection, item_id, version),
            ).fetchone()
        return row is not None
