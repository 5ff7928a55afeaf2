"""A pool of PostgreSQL connections that outlives a server restart (psycopg-pool).

:class:`PgPool` hands each call its own connection (checked alive before use), and runs
the call again on a fresh connection when the first one was lost: a restarted or
failed-over server, a dropped TCP connection, a deadlock or serialisation failure.
Those are *transient* (:func:`is_transient`); when they last longer than
``retry_timeout`` the call raises :class:`CatalogUnavailableError`, a
:class:`~gravitas.schemas.errors.StorageError` that the agents' error policy retries.
Every other database error goes back to the caller unchanged, to be named there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from gravitas.storage.catalog.errors import CatalogError, CatalogUnavailableError

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["PgPool", "is_transient", "redact"]

T = TypeVar("T")

_TRANSIENT_STATES = frozenset({"53300", "57P01", "57P02", "57P03"})
"""SQLSTATEs worth another try: too many connections, admin / crash shutdown, starting up."""
_TRANSIENT_CLASSES = frozenset({"08", "40"})
"""SQLSTATE classes worth another try: connection exception, transaction rollback."""


def is_transient(exc: BaseException, conn: Any = None) -> bool:
    """True when ``exc`` is a lost or refused connection (or a deadlock / serialisation
    failure), so the same call may succeed on another connection; False for a bad
    statement, a bad value or a cancelled (timed-out) query."""
    import psycopg
    from psycopg_pool import PoolTimeout

    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, psycopg.Error):
        return False
    if conn is not None and (conn.broken or conn.closed):
        return True
    state = exc.sqlstate
    if state is None:
        return isinstance(exc, psycopg.OperationalError)
    return state in _TRANSIENT_STATES or state[:2] in _TRANSIENT_CLASSES


def redact(dsn: str) -> str:
    """``dsn`` with its password replaced by ``***``."""
    parts = urlsplit(dsn)
    if parts.password:
        return dsn.replace(f":{parts.password}@", ":***@")
    return dsn


class PgPool:
    """Connections to one database: ``run(what, fn)`` calls ``fn(conn)`` on a pooled
    autocommit connection (``search_path`` and ``statement_timeout`` set), retrying
    transient failures until ``retry_timeout`` seconds have passed."""

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        connect_timeout: float = 10.0,
        retry_timeout: float = 30.0,
        statement_timeout_s: float = 60.0,
        search_path: str = "pgstac, public",
    ) -> None:
        from psycopg_pool import ConnectionPool

        self.dsn = dsn
        """The libpq connection string."""
        self.retry_timeout = retry_timeout
        """Seconds a call keeps retrying a lost connection before giving up."""
        self.retries = 0
        """Calls re-run after a transient failure (for tests and metrics)."""
        self._statement_timeout_ms = int(statement_timeout_s * 1000)
        self._search_path = search_path
        self._pool: ConnectionPool[Any] = ConnectionPool(
            dsn,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(connect_timeout))},
            min_size=min_size,
            max_size=max_size,
            open=False,
            configure=self._configure,
            check=ConnectionPool.check_connection,
            timeout=connect_timeout,
            reconnect_timeout=max(retry_timeout, 1.0),
            num_workers=1,
            name=f"gravitas-catalog-{redact(dsn)}",
        )
        self._pool.open(wait=False)

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        from psycopg import sql

        conn.execute(sql.SQL("SET search_path TO {}").format(sql.SQL(self._search_path)))
        conn.execute(
            sql.SQL("SET statement_timeout = {}").format(sql.Literal(self._statement_timeout_ms))
        )

    def run(self, what: str, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``fn(conn)`` on a pooled connection; transient failures are retried with backoff
        (``fn`` must be safe to run twice: one transaction, idempotent)."""
        from psycopg_pool import PoolClosed

        deadline = time.monotonic() + self.retry_timeout
        delay = 0.05
        while True:
            conn: Any = None
            try:
                remaining = max(0.5, deadline - time.monotonic())
                with self._pool.connection(timeout=remaining) as conn:
                    return fn(conn)
            except PoolClosed as exc:
                raise CatalogError(f"the catalog at {redact(self.dsn)} is closed") from exc
            except Exception as exc:
                if not is_transient(exc, conn):
                    raise
                if time.monotonic() + delay > deadline:
                    raise CatalogUnavailableError(
                        f"the catalog database {redact(self.dsn)} was unreachable for "
                        f"{self.retry_timeout:g}s during {what}: {_first_line(exc)}; "
                        "is PostgreSQL running? (the call is safe to retry)"
                    ) from exc
            self.retries += 1
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def close(self) -> None:
        """Close every connection; safe to repeat."""
        self._pool.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
