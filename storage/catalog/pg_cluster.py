"""A throwaway PostgreSQL 15 cluster with PostGIS and pgstac, for tests and single machines.

:class:`PostgresCluster` runs Debian's ``initdb`` / ``pg_ctl`` (from
``scripts/setup-postgres``) on a fresh data directory in a temp dir, listening on
127.0.0.1 at a free port and on a unix socket inside that temp dir only. ``initdb``
refuses to run as root, so as root the binaries run as the ``postgres`` system user
(``runuser -u postgres --``), as Debian's ``pg_virtualenv`` does. It then creates a
database, enables PostGIS and runs ``pypgstac migrate``. The cluster is stopped
(``pg_ctl stop -m fast``) and its directory removed on ``stop()``, on leaving the
``with`` block, or at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from gravitas.storage.catalog.errors import CatalogError
from gravitas.storage.lifecycle import StartStop
from gravitas.storage.ports import free_port

__all__ = ["PostgresCluster", "PostgresClusterError", "find_pg_bindir"]

HOST = "127.0.0.1"
PG_MAJOR = 15
SETUP_HINT = "install PostgreSQL 15 and PostGIS with: scripts/setup-postgres (as root)"


class PostgresClusterError(CatalogError):
    """The throwaway PostgreSQL cluster could not be found, created, started or migrated."""


def find_pg_bindir() -> Path:
    """Directory of ``initdb`` / ``pg_ctl``: ``$GRAVITAS_PG_BINDIR`` if set, else Debian's."""
    explicit = os.environ.get("GRAVITAS_PG_BINDIR")
    c = Path(explicit or f"/usr/lib/postgresql/{PG_MAJOR}/bin")
    if (c / "initdb").is_file() and (c / "pg_ctl").is_file():
        return c
    where = f"GRAVITAS_PG_BINDIR={explicit}" if explicit else str(c)
    raise PostgresClusterError(
        f"PostgreSQL {PG_MAJOR} binaries (initdb, pg_ctl) not found in {where}; {SETUP_HINT}"
        + (", or point GRAVITAS_PG_BINDIR at their directory" if not explicit else "")
    )


def _check_postgis(bindir: Path) -> None:
    """Fail early, with the fix, when the PostGIS extension is not installed."""
    sharedir = (
        subprocess.run(
            [str(bindir / "pg_config"), "--sharedir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        or f"/usr/share/postgresql/{PG_MAJOR}"
    )
    if not (Path(sharedir) / "extension" / "postgis.control").is_file():
        raise PostgresClusterError(
            f"the PostGIS extension is missing ({sharedir}/extension/postgis.control); {SETUP_HINT}"
        )


class PostgresCluster(StartStop):
    """One PostgreSQL server with a pgstac database, on ``127.0.0.1:<free port>``.

    Usage::

        with PostgresCluster() as pg:
            catalog = PgstacCatalog(pg.dsn, node_id="node-a")
    """

    def __init__(
        self,
        database: str = "gravitas",
        user: str = "gravitas",
        migrate: bool = True,
        start_timeout: float = 60.0,
    ) -> None:
        self.database = database
        """Name of the database that holds pgstac."""
        self.user = user
        """Superuser name (password generated per cluster)."""
        self.password = secrets.token_hex(16)
        """The superuser's password (scram-sha-256 on TCP)."""
        self.migrate = migrate
        """Run ``pypgstac migrate`` after creating the database."""
        self.start_timeout = start_timeout
        self.port = 0
        """The TCP port (0 until started)."""
        self.pgstac_version: str | None = None
        """pgstac schema version after migration."""
        self.root: Path | None = None
        self._run_as: str | None = None
        self._started = False
        self._options = ""

    # --- connection details -------------------------------------------------------

    @property
    def host(self) -> str:
        """Host the server listens on."""
        return HOST

    @property
    def dsn(self) -> str:
        """``postgresql://user:password@127.0.0.1:port/database``."""
        return self.dsn_for(self.database)

    def dsn_for(self, database: str) -> str:
        """DSN of another database on this server."""
        return (
            f"postgresql://{quote(self.user)}:{quote(self.password)}@{HOST}:{self.port}/"
            f"{quote(database)}"
        )

    @property
    def env(self) -> dict[str, str]:
        """``PG*`` variables (as ``pg_virtualenv`` sets them) for clients such as psql."""
        return {
            "PGHOST": HOST,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGDATABASE": self.database,
        }

    @property
    def log_path(self) -> Path:
        """The server log file."""
        if self.root is None:
            raise PostgresClusterError("the cluster has not been started; call start() first")
        return self.root / "postgres.log"

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> PostgresCluster:
        """initdb, start, create the database, enable PostGIS, migrate pgstac."""
        if self._started:
            return self
        bindir = find_pg_bindir()
        _check_postgis(bindir)
        self._run_as = self._pick_user()
        # The postgres user must reach the data dir: as root, use world-traversable /tmp.
        parent = "/tmp" if self._run_as is not None else None
        self.root = Path(tempfile.mkdtemp(prefix="gravitas-pg-", dir=parent))
        data = self.root / "data"
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self._run_as is not None:
            pw = pwd.getpwnam(self._run_as)
            self.root.chmod(0o700)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        atexit.register(self.stop)
        self._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                self.user,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            "initdb",
        )
        pwfile.unlink()
        self.port = free_port()
        self._options = " ".join(
            [
                f"-p {self.port}",
                f"-c listen_addresses={HOST}",
                f"-c unix_socket_directories={self.root}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c shared_buffers=64MB",
                "-c max_connections=60",
            ]
        )
        self._pg_ctl_start()
        self._started = True
        try:
            self._create_database()
            if self.migrate:
                self.pgstac_version = self._migrate()
        except BaseException:
            self.stop()
            raise
        return self

    def _pg_ctl_start(self) -> None:
        if self.root is None:
            raise PostgresClusterError("the cluster has not been started; call start() first")
        self._run(
            [
                str(find_pg_bindir() / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-l",
                str(self.log_path),
                "-o",
                self._options,
                "-w",
                "-t",
                str(int(self.start_timeout)),
                "start",
            ],
            "pg_ctl start",
        )

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server process but keep its data (``mode``: ``fast`` ends sessions,
        ``immediate`` is a crash); :meth:`start_server` brings it back on the same port."""
        if self.root is None or not self._started:
            raise PostgresClusterError("the cluster has not been started; call start() first")
        if mode not in ("smart", "fast", "immediate"):
            raise PostgresClusterError(f"pg_ctl stop mode {mode!r}: use smart, fast or immediate")
        self._run(
            [
                str(find_pg_bindir() / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-m",
                mode,
                "-w",
                "stop",
            ],
            "pg_ctl stop",
        )

    def start_server(self) -> None:
        """Start the server again after :meth:`stop_server` (same data, port and password)."""
        self._pg_ctl_start()

    def restart(self, mode: str = "fast") -> None:
        """Stop and start the server: every open connection is cut."""
        self.stop_server(mode)
        self.start_server()

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory; safe to repeat."""
        root, self.root = self.root, None
        if root is None:
            return
        data = root / "data"
        if self._started and (data / "postmaster.pid").exists():
            with contextlib.suppress(PostgresClusterError):
                self._run(
                    [str(find_pg_bindir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                    "pg_ctl stop",
                )
        self._started = False
        shutil.rmtree(root, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    # --- internals --------------------------------------------------------------------

    @staticmethod
    def _pick_user() -> str | None:
        """None when not root; else the ``postgres`` system user (initdb refuses root)."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise PostgresClusterError(
                "running as root, and there is no 'postgres' system user to run initdb as; "
                f"{SETUP_HINT} (the Debian package creates that user)"
            ) from exc
        if shutil.which("runuser") is None:
            raise PostgresClusterError("running as root but 'runuser' (util-linux) is missing")
        return "postgres"

    def _run(self, cmd: list[str], what: str) -> None:
        if self._run_as is not None:
            cmd = ["runuser", "-u", self._run_as, "--", *cmd]
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=False,
            cwd=self.root or "/",
            timeout=self.start_timeout + 30,
        )
        if proc.returncode != 0:
            log = ""
            if self.root is not None and (self.root / "postgres.log").exists():
                log = (self.root / "postgres.log").read_text(errors="replace")[-2000:]
            raise PostgresClusterError(
                f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}{log}"
            )

    def _connect(self, database: str, autocommit: bool = True):  # type: ignore[no-untyped-def]
        import psycopg

        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                return psycopg.connect(self.dsn_for(database), autocommit=autocommit)
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PostgresClusterError(
                        f"cannot connect to {HOST}:{self.port}/{database}: {exc}"
                    ) from exc
                time.sleep(0.2)

    def create_database(self, name: str, migrate: bool = True, template: str | None = None) -> str:
        """Create another database on this server and return its DSN.

        With ``template``, a copy of that (idle) database: a migrated pgstac database is
        cloned in well under a second. Otherwise PostGIS, plus pgstac when ``migrate``.
        """
        from psycopg import sql

        if not self._started:
            raise PostgresClusterError("the cluster has not been started; call start() first")
        if template is not None:
            with self._connect("postgres") as conn:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                )
            return self.dsn_for(name)
        self._create_database(name)
        if migrate:
            self._migrate(name)
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database (closing its connections)."""
        from psycopg import sql

        with self._connect("postgres") as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def _create_database(self, name: str | None = None) -> None:
        from psycopg import sql

        name = name or self.database
        with self._connect("postgres") as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with self._connect(name) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    def _migrate(self, name: str | None = None) -> str:
        """``pypgstac migrate`` against a new database; the pgstac version."""
        name = name or self.database
        try:
            from pypgstac.db import PgstacDB
            from pypgstac.migrate import Migrate
        except ImportError as exc:
            raise PostgresClusterError(
                f"pypgstac is not installed ({exc}); pip install 'pypgstac[psycopg]==0.10.0'"
            ) from exc
        db = PgstacDB(dsn=self.dsn_for(name))
        try:
            version: str = Migrate(db).run_migration()
        except Exception as exc:
            raise PostgresClusterError(f"pypgstac migrate failed on {name}: {exc}") from exc
        finally:
            db.disconnect()
            db.close()
        return version
