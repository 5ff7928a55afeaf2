"""The STAC API of a production node: stac-fastapi-pgstac over a pgstac database.

:func:`create_pgstac_app` builds the stac-fastapi-pgstac FastAPI app for a DSN (no
environment variables needed); :class:`PgstacApiServer` serves it with uvicorn on
127.0.0.1 at a free port in a background thread of this process, and stops it on
``stop()``, on leaving the ``with`` block, or at interpreter exit.
"""

from __future__ import annotations

import atexit
import json
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import httpx

from gravitas.storage.catalog.errors import CatalogError
from gravitas.storage.lifecycle import StartStop
from gravitas.storage.ports import free_port

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

__all__ = ["PgstacApiError", "PgstacApiServer", "create_pgstac_app"]

HOST = "127.0.0.1"


class PgstacApiError(CatalogError):
    """stac-fastapi-pgstac could not be imported, configured or started."""


class Flatten3DBBox:
    """ASGI middleware: drop the heights of 6-number ``bbox`` search parameters.

    pgstac turns a 3-D bbox into a PolyhedralSurface that PostGIS 3.3 (Debian bookworm)
    cannot intersect ("Unknown geometry type: 13"), so a valid STAC request would fail
    with a server error. Heights are not indexed anyway; the 2-D box selects the same
    items. Applies to GET query strings and to POST JSON bodies.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if b"bbox" in query:
            pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
            if any(k == "bbox" and v.count(",") == 5 for k, v in pairs):
                fixed = [(k, _flat_text(v) if k == "bbox" else v) for k, v in pairs]
                scope = {**scope, "query_string": urlencode(fixed).encode("latin-1")}
        if scope.get("method") == "POST":
            body, more = b"", True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            body = _flat_body(body)
            sent = False

            async def replay() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return await receive()
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            headers = [(k, v) for k, v in scope.get("headers", []) if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await self.app({**scope, "headers": headers}, replay, send)
            return
        await self.app(scope, receive, send)


def _flat_text(value: str) -> str:
    parts = value.split(",")
    return ",".join([parts[0], parts[1], parts[3], parts[4]]) if len(parts) == 6 else value


def _flat_body(body: bytes) -> bytes:
    if b"bbox" not in body:
        return body
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    bbox = doc.get("bbox") if isinstance(doc, dict) else None
    if isinstance(bbox, list) and len(bbox) == 6:
        doc["bbox"] = [bbox[0], bbox[1], bbox[3], bbox[4]]
        return json.dumps(doc).encode()
    return body


def _postgres_settings(dsn: str) -> Any:
    from stac_fastapi.pgstac.config import PostgresSettings

    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres", "pgstac") or not parts.hostname:
        raise PgstacApiError(
            f"expected postgresql://user:password@host:port/db for the STAC API, got "
            f"{parts.scheme}://{parts.hostname}..."
        )
    return PostgresSettings(
        pguser=unquote(parts.username or "postgres"),
        pgpassword=unquote(parts.password or ""),
        pghost=parts.hostname,
        pgport=parts.port or 5432,
        pgdatabase=unquote(parts.path.lstrip("/")) or "postgres",
        db_min_conn_size=1,
        db_max_conn_size=4,
    )


def create_pgstac_app(
    dsn: str, title: str = "gravitas", transactions: bool = False, **settings: Any
) -> FastAPI:
    """The stac-fastapi-pgstac app reading ``dsn`` (search, filter, sort, fields, token
    paging; transactions when asked). Extra keyword arguments go to its ``Settings``."""
    try:
        from stac_fastapi.pgstac.app import instantiate_api
        from stac_fastapi.pgstac.config import Settings
        from stac_fastapi.pgstac.db import close_db_connection, connect_to_db
        from stac_fastapi.pgstac.models.extensions import Extensions
    except ImportError as exc:
        raise PgstacApiError(
            f"stac-fastapi-pgstac is not importable ({exc}); "
            "pip install 'gravitas[pgstac]' (stac-fastapi-pgstac==7.2.0)"
        ) from exc
    pg = _postgres_settings(dsn)
    api_settings = Settings(
        stac_fastapi_title=title,
        stac_fastapi_description=f"{title}: STAC API over pgstac",
        stac_fastapi_landing_id=title,
        stac_fastapi_version=_version(),
        enable_transactions_extensions=transactions,
        **settings,
    )
    extensions = Extensions(settings=api_settings)
    from stac_fastapi.pgstac.core import CoreCrudClient

    from gravitas.storage.catalog.pgstac import api_item

    class GravitasCrudClient(CoreCrudClient):  # type: ignore[misc]
        """pgstac's client, serving items with their null members (``datetime: null``)."""

        async def _search_base(self, search_request: Any, request: Any) -> Any:
            collection = await super()._search_base(search_request, request=request)
            for feature in collection.get("features") or []:
                api_item(feature)
            return collection

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await connect_to_db(app, postgres_settings=pg, add_write_connection_pool=transactions)
        yield
        await close_db_connection(app)

    api = instantiate_api(
        client=GravitasCrudClient, extensions=extensions, lifespan=lifespan, settings=api_settings
    )
    app: FastAPI = api.app
    app.add_middleware(Flatten3DBBox)
    from gravitas.storage.catalog.pgstac_guard import GuardFilters

    app.add_middleware(GuardFilters)  # GET filters parsed safely before stac-fastapi sees them
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gravitas")
    except PackageNotFoundError:
        return "0"


class PgstacApiServer(StartStop):
    """uvicorn serving :func:`create_pgstac_app` on ``127.0.0.1:<free port>``.

    Usage::

        with PostgresCluster() as pg, PgstacApiServer(pg.dsn) as api:
            Client.open(api.url).search(collections=["sentinel-2-l2a"])
    """

    def __init__(self, dsn: str, start_timeout: float = 30.0, **app_options: Any) -> None:
        self.dsn = dsn
        """The pgstac database the API reads."""
        self.start_timeout = start_timeout
        self.port = 0
        """The TCP port (0 until started)."""
        self._app_options = app_options
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Root URL of the STAC API (landing page)."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> PgstacApiServer:
        """Start uvicorn in a thread and wait until the landing page answers."""
        import uvicorn

        if self._server is not None:
            return self
        app = create_pgstac_app(self.dsn, **self._app_options)
        self.port = free_port()
        config = uvicorn.Config(
            app,
            host=HOST,
            port=self.port,
            log_level="warning",
            lifespan="on",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name=f"pgstac-api-{self.port}", daemon=True
        )
        self._thread.start()
        atexit.register(self.stop)
        deadline = time.monotonic() + self.start_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                self.stop()
                raise PgstacApiError(
                    f"stac-fastapi-pgstac on {self.url} exited during start-up (is {self.dsn!r}"
                    " reachable and migrated?)"
                )
            try:
                r = httpx.get(f"{self.url}/_mgmt/ping", timeout=2.0)
                if r.status_code == 200:
                    return self
                last = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.1)
        self.stop()
        raise PgstacApiError(
            f"stac-fastapi-pgstac did not answer on {self.url} within {self.start_timeout}s "
            f"({last})"
        )

    def stop(self) -> None:
        """Ask uvicorn to exit and join its thread; safe to repeat."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=15)
        atexit.unregister(self.stop)
