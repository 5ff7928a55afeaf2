"""The production catalog: PostgreSQL + pgstac (served by the node's one STAC API router).

Collections and items go through pgstac's own SQL functions (``upsert_collection``,
``upsert_item``, ``get_item``, ``search``), so the STAC API over the same database sees
exactly what this class wrote. The owning node and the version live in the item's
properties (``gravitas:node``, ``gravitas:version``): an upsert takes a per-item
advisory lock, reads the stored version and keeps a newer one. pgstac needs an item's
collection to exist: an item that arrives before its collection creates it, and every
stored item grows its collection's extents, summaries and ``item_assets`` in the same
transaction (:mod:`~gravitas.storage.catalog.collections`). Placeholder collections
(``"gravitas:placeholder": true``) written by older versions stay hidden.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from gravitas.storage.catalog.base import (
    NODE_PROPERTY,
    SearchPage,
    SearchParams,
    check_item,
    utc_text,
)
from gravitas.storage.catalog.collections import covering, grow, new_collection
from gravitas.storage.catalog.errors import (
    CatalogError,
    CollectionNotFoundError,
    InvalidItemError,
    InvalidSearchError,
    ItemNotFoundError,
    UnsupportedFilterError,
)
from gravitas.storage.catalog.pg_pool import PgPool, redact
from gravitas.storage.catalog.search_checks import shown

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "NULLS_MEMBER",
    "PLACEHOLDER_PROPERTY",
    "RAW_GEOMETRY_MEMBER",
    "VERSION_PROPERTY",
    "PgstacCatalog",
    "api_item",
]

T = TypeVar("T")

VERSION_PROPERTY = "gravitas:version"
"""Item property holding the registration version (stored and returned)."""

PLACEHOLDER_PROPERTY = "gravitas:placeholder"
"""Top-level member marking a collection created only to hold early items."""

RAW_GEOMETRY_MEMBER = "gravitas:geometry"
"""Top-level item member keeping an invalid geometry as given (the index holds a repair)."""

NULLS_MEMBER = "gravitas:nulls"
"""Top-level item member listing the paths of null object members (pgstac drops them)."""


class PgstacCatalog:
    """A :class:`~gravitas.storage.catalog.base.Catalog` in a pgstac database.

    ``dsn`` is ``postgresql://user:password@host:port/db`` (``pgstac://`` is accepted);
    the database must already be migrated (``pypgstac migrate``, or
    :class:`~gravitas.storage.catalog.pg_cluster.PostgresCluster`).
    """

    def __init__(
        self,
        dsn: str,
        node_id: str = "local",
        connect_timeout: float = 10.0,
        *,
        pool_size: int = 4,
        retry_timeout: float = 30.0,
        statement_timeout_s: float = 60.0,
    ) -> None:
        import psycopg

        scheme = urlsplit(dsn).scheme
        self.dsn = "postgresql" + dsn[len(scheme) :] if scheme == "pgstac" else dsn
        """The libpq connection string."""
        self.node_id = node_id
        """Default owner of upserted items."""
        try:  # one direct probe first: its error names the cause (a pool only times out)
            with psycopg.connect(
                self.dsn, autocommit=True, connect_timeout=max(1, int(connect_timeout))
            ) as probe:
                row = probe.execute("SELECT pgstac.get_version()").fetchone()
        except psycopg.Error as exc:
            raise CatalogError(
                f"cannot open the pgstac catalog at {redact(self.dsn)}: {exc}; is the server "
                "running and the database migrated with 'pypgstac migrate'?"
            ) from exc
        self.pgstac_version: str = str(row[0]) if row else "unknown"
        """The pgstac schema version of the database."""
        self.pool = PgPool(
            self.dsn,
            max_size=pool_size,
            connect_timeout=connect_timeout,
            retry_timeout=retry_timeout,
            statement_timeout_s=statement_timeout_s,
        )
        """The connections (reconnecting after a server restart)."""

    # --- plumbing ------------------------------------------------------------------

    def _run(
        self,
        what: str,
        fn: Callable[[psycopg.Connection[Any]], T],
        refused: Callable[[Exception], Exception] | None = None,
    ) -> T:
        """``fn(conn)`` on a pooled connection (retried after a lost connection); any other
        database error becomes ``refused(exc)`` (default: :class:`CatalogError`)."""
        import psycopg

        try:
            return self.pool.run(what, fn)
        except psycopg.Error as exc:
            if refused is not None:
                raise refused(exc) from exc
            raise CatalogError(f"pgstac {what} failed: {_first_line(exc)}") from exc

    def _one(self, what: str, sql: str, args: tuple[Any, ...] = ()) -> Any:
        def call(conn: psycopg.Connection[Any]) -> Any:
            row = conn.execute(sql, args).fetchone()
            return row[0] if row else None

        return self._run(what, call)

    @staticmethod
    def _lock_key(conn: psycopg.Connection[Any], *parts: str) -> None:
        """Transaction-scoped advisory lock on a (collection[, item]) key."""
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("\x1f".join(parts),))

    # --- collections ---------------------------------------------------------------

    def upsert_collection(self, collection: Mapping[str, Any]) -> None:
        """Insert or replace a collection by id (replacing a placeholder)."""
        from psycopg.types.json import Jsonb

        cid = collection.get("id")
        if not isinstance(cid, str) or not cid:
            raise InvalidItemError(f"collection needs a string 'id', got {cid!r}")
        doc = dict(collection)
        doc.setdefault("type", "Collection")
        if doc["type"] != "Collection":
            raise InvalidItemError(f"collection {cid!r} has type {doc['type']!r}, not Collection")
        doc.pop(PLACEHOLDER_PROPERTY, None)

        def call(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                self._lock_key(conn, cid)
                rows = conn.execute(
                    "SELECT content_hydrate(items) FROM items WHERE collection = %s ORDER BY id",
                    (cid,),
                )
                covered = covering(doc, (_public(r[0]) for r in rows))
                conn.execute("SELECT upsert_collection(%s)", (Jsonb(covered),))

        self._run(
            "upsert_collection",
            call,
            lambda exc: InvalidItemError(f"pgstac rejected collection {cid!r}: {_first_line(exc)}"),
        )

    def _collection(self, collection_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = self._one(
            "get_collection", "SELECT content FROM collections WHERE id = %s", (collection_id,)
        )
        return doc

    def get_collection(self, collection_id: str) -> dict[str, Any]:
        """The collection dict, or :class:`CollectionNotFoundError`."""
        doc = self._collection(collection_id)
        if doc is None or doc.get(PLACEHOLDER_PROPERTY):
            raise CollectionNotFoundError(
                f"collection {collection_id!r} not found; list them with list_collections()"
            )
        return doc

    def list_collections(self) -> list[dict[str, Any]]:
        """Every (non-placeholder) collection, by id."""

        def call(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT content FROM collections WHERE NOT content ? %s ORDER BY id",
                (PLACEHOLDER_PROPERTY,),
            ).fetchall()
            return [r[0] for r in rows]

        return self._run("list_collections", call)

    def delete_collection(self, collection_id: str) -> bool:
        """Remove a collection and its items; False if it was unknown (or a placeholder)."""

        def call(conn: psycopg.Connection[Any]) -> bool:
            with conn.transaction():
                self._lock_key(conn, collection_id)
                row = conn.execute(
                    "SELECT content ? %s FROM collections WHERE id = %s",
                    (PLACEHOLDER_PROPERTY, collection_id),
                ).fetchone()
                if row is None:
                    return False
                conn.execute("SELECT delete_collection(%s)", (collection_id,))
                return not row[0]

        return self._run("delete_collection", call)

    # --- items ---------------------------------------------------------------------

    def upsert_item(
        self, item: Mapping[str, Any], owning_node: str | None = None, version: int = 1
    ) -> bool:
        """Store an item unless a newer version is stored (then False)."""
        from psycopg.types.json import Jsonb

        iid, cid, props = _check_item(item)
        doc = {k: v for k, v in item.items() if k not in (NULLS_MEMBER, RAW_GEOMETRY_MEMBER)}
        repair = _needs_repair(doc.get("geometry"), iid)
        if repair:
            doc[RAW_GEOMETRY_MEMBER] = doc["geometry"]
        doc["properties"] = {
            **props,
            NODE_PROPERTY: owning_node or self.node_id,
            VERSION_PROPERTY: int(version),
        }
        nulls = list(_null_paths(doc))
        if nulls:
            doc[NULLS_MEMBER] = nulls

        def call(conn: psycopg.Connection[Any]) -> bool:
            with conn.transaction():
                self._lock_key(conn, cid)
                self._lock_key(conn, cid, iid)
                row = conn.execute(
                    "SELECT (content->'properties'->>%s) FROM items "
                    "WHERE collection = %s AND id = %s",
                    (VERSION_PROPERTY, cid, iid),
                ).fetchone()
                if row is not None and _as_int(row[0]) > version:
                    return False
                self._grow_collection(conn, cid, item)
                conn.execute("SELECT upsert_item(%s)", (Jsonb(doc),))
                if repair:  # GEOS refuses predicates on invalid shapes; index a repair
                    conn.execute(
                        "UPDATE items SET geometry = "
                        "ST_MakeValid(geometry, 'method=structure') "
                        "WHERE collection = %s AND id = %s AND NOT ST_IsValid(geometry)",
                        (cid, iid),
                    )
                return True

        return self._run(
            "upsert_item",
            call,
            lambda exc: InvalidItemError(f"pgstac rejected item {iid!r} of {cid!r}: {exc}"),
        )

    def _grow_collection(
        self, conn: psycopg.Connection[Any], cid: str, item: Mapping[str, Any]
    ) -> None:
        """Create or grow the item's collection (before the item: pgstac needs it)."""
        from psycopg.types.json import Jsonb

        row = conn.execute("SELECT content FROM collections WHERE id = %s", (cid,)).fetchone()
        current = row[0] if row is not None else None
        if current is None or current.get(PLACEHOLDER_PROPERTY):
            grown = grow(new_collection(cid, self.node_id), item)
        else:
            grown = grow(current, item)
        if current is None:
            conn.execute("SELECT create_collection(%s)", (Jsonb(grown),))
        elif grown != current:
            conn.execute("SELECT update_collection(%s)", (Jsonb(grown),))

    def get_item(self, collection_id: str, item_id: str) -> dict[str, Any]:
        """The item (with ``gravitas:node``), or :class:`ItemNotFoundError`."""
        doc = self._one("get_item", "SELECT get_item(%s, %s)", (item_id, collection_id))
        if doc is None:
            raise ItemNotFoundError(f"item {item_id!r} not found in collection {collection_id!r}")
        return _public(doc)

    def delete_item(self, collection_id: str, item_id: str, version: int | None = None) -> bool:
        """Remove an item (only if not newer than ``version``, when given)."""

        def call(conn: psycopg.Connection[Any]) -> bool:
            with conn.transaction():
                self._lock_key(conn, collection_id, item_id)
                row = conn.execute(
                    "SELECT (content->'properties'->>%s) FROM items "
                    "WHERE collection = %s AND id = %s",
                    (VERSION_PROPERTY, collection_id, item_id),
                ).fetchone()
                if row is None or (version is not None and _as_int(row[0]) > version):
                    return False
                conn.execute("SELECT delete_item(%s, %s)", (item_id, collection_id))
                return True

        return self._run("delete_item", call)

    def count(self, collection_id: str | None = None, federated: bool = True) -> int:
        """Number of items (in one collection; local only unless ``federated``)."""
        sql = "SELECT count(*) FROM items WHERE (%s::text IS NULL OR collection = %s)"
        args: tuple[Any, ...] = (collection_id, collection_id)
        if not federated:
            sql += " AND content->'properties'->>%s = %s"
            args += (NODE_PROPERTY, self.node_id)
        return int(self._one("count", sql, args))

    # --- search --------------------------------------------------------------------

    def search(self, params: SearchParams) -> SearchPage:
        """One page of matching items through pgstac's ``search(jsonb)``."""
        from psycopg.types.json import Jsonb

        if params.collections == () or params.ids == ():
            return SearchPage(items=[], matched=0, next_token=None)
        body = self.search_body(params)
        digest = _digest(body)
        if params.token:
            body["token"] = _unwrap_token(params.token, digest)

        def call(conn: psycopg.Connection[Any]) -> dict[str, Any]:
            row = conn.execute("SELECT search(%s)", (Jsonb(body),)).fetchone()
            return row[0] if row and row[0] else {}

        result = self._run("search", call, lambda exc: _search_error(exc, params))
        items = [_public(f) for f in result.get("features") or []]
        matched = result.get("numberMatched")
        return SearchPage(
            items=items,
            matched=int(matched) if matched is not None else None,
            next_token=_wrap_token(_next_token(result.get("links") or []), digest),
        )

    def search_body(self, p: SearchParams) -> dict[str, Any]:
        """The pgstac ``search`` JSON for ``p`` without its token (cql2-json; context on;
        total order)."""
        body: dict[str, Any] = {"limit": p.limit, "conf": {"context": "on"}}
        if p.collections is not None:
            body["collections"] = list(p.collections)
        if p.ids is not None:
            body["ids"] = list(p.ids)
        if p.bbox2d is not None:
            body["bbox"] = list(p.bbox2d)  # PostGIS 3.3 + pgstac fail on 3-D boxes
        if p.intersects is not None:
            body["intersects"] = dict(p.intersects)
        if p.datetime is not None:
            start, end = p.interval
            body["datetime"] = "/".join(
                utc_text(d) if d is not None else ".." for d in (start, end)
            )
        filters = []
        user = p.filter_json()
        if user is not None:
            filters.append(_normalise_cql2(user))
        if not p.federated:
            filters.append({"op": "=", "args": [{"property": NODE_PROPERTY}, self.node_id]})
        if filters:
            body["filter"] = filters[0] if len(filters) == 1 else {"op": "and", "args": filters}
            body["filter-lang"] = "cql2-json"
        sortby = [{"field": s.name, "direction": s.direction} for s in p.sortby]
        if not sortby:
            sortby = [{"field": "datetime", "direction": "desc"}]
        named = {s["field"] for s in sortby}
        sortby += [{"field": k, "direction": "asc"} for k in ("collection", "id") if k not in named]
        body["sortby"] = sortby
        return body

    def close(self) -> None:
        """Close every pooled connection."""
        self.pool.close()

    def __enter__(self) -> PgstacCatalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- helpers --------------------------------------------------------------------------


def _check_item(item: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The common item checks, plus what pgstac needs: a geometry or a bbox."""
    iid, cid, props = check_item(item)
    if item.get("geometry") is None and item.get("bbox") is None:
        raise InvalidItemError(f"item {iid!r} has neither 'geometry' nor 'bbox'; pgstac needs one")
    return iid, cid, props


def api_item(doc: dict[str, Any]) -> dict[str, Any]:
    """An item as the STAC API serves it: null members restored (``datetime: null`` is
    required), the bookkeeping members dropped, the version kept, the indexed (repaired)
    geometry kept."""
    doc.pop(RAW_GEOMETRY_MEMBER, None)
    for path in doc.pop(NULLS_MEMBER, None) or []:
        _restore_null(doc, path)
    return doc


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    """An item as the catalog returns it: with ``gravitas:node``, ``gravitas:version``
    (as the embedded catalog keeps it, and as the registrar reads it to bump versions)
    and its null members."""
    if RAW_GEOMETRY_MEMBER in doc:
        doc["geometry"] = doc.pop(RAW_GEOMETRY_MEMBER)
    for path in doc.pop(NULLS_MEMBER, None) or []:
        _restore_null(doc, path)
    return doc


def _needs_repair(geometry: Any, iid: str) -> bool:
    """True for a GeoJSON geometry that GEOS considers invalid (e.g. self-intersecting)."""
    if not geometry:
        return False
    from shapely.geometry import shape

    try:
        return not shape(geometry).is_valid
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        raise InvalidItemError(f"item {iid!r} has a malformed geometry: {exc}") from exc


def _null_paths(value: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[list[str | int]]:
    """Paths (keys and list indices) of object members whose value is null."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if v is None:
                yield [*prefix, k]
            else:
                yield from _null_paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _null_paths(v, (*prefix, i))


def _restore_null(doc: Any, path: list[Any]) -> None:
    node = doc
    for key in path[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(node, dict) and path:
        node.setdefault(path[-1], None)


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _next_token(links: list[dict[str, Any]]) -> str | None:
    for link in links:
        if link.get("rel") == "next":
            tokens = parse_qs(urlsplit(str(link.get("href", ""))).query).get("token")
            if tokens:
                return tokens[0]
    return None


def _digest(body: Mapping[str, Any]) -> str:
    """A short hash of a search (without limit and token): tokens are bound to it."""
    import orjson

    key = {k: v for k, v in body.items() if k not in ("limit", "token", "conf")}
    return hashlib.sha256(orjson.dumps(key, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


def _wrap_token(token: str | None, digest: str) -> str | None:
    """pgstac's ``next:<collection>:<id>`` token, bound to the search that produced it."""
    if token is None:
        return None
    return base64.urlsafe_b64encode(f"{digest}|{token}".encode()).decode().rstrip("=")


def _unwrap_token(token: str, digest: str) -> str:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        tdigest, inner = text.split("|", 1)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidSearchError(
            f"paging token {token!r} is malformed; restart the search"
        ) from exc
    if tdigest != digest:
        raise InvalidSearchError(
            f"paging token {token!r} belongs to a different search; use the token from the "
            "previous page of this same search"
        )
    return inner


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _search_error(exc: Exception, params: SearchParams) -> InvalidSearchError:
    import psycopg

    text = _first_line(exc)
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return InvalidSearchError(
            f"the search ran longer than the catalog allows ({text}); narrow it with "
            "collections, bbox or datetime"
        )
    text = text[:300]
    if params.token and "token" in text.lower():
        return InvalidSearchError(
            f"paging token {shown(params.token)} is not valid here ({text}); restart the search"
        )
    if "not supported" in text.lower() or "unsupported" in text.lower():
        return UnsupportedFilterError(
            f"pgstac cannot evaluate filter {shown(params.filter, 300)}: {text}"
        )
    named = [
        f"{name} {shown(value, 200)}"
        for name, value in (
            ("filter", params.filter),
            ("sortby", [s.field for s in params.sortby] or None),
            ("ids", params.ids),
            ("collections", params.collections),
            ("bbox", params.bbox),
            ("intersects", params.intersects),
            ("datetime", params.datetime),
        )
        if value is not None
    ]
    return InvalidSearchError(f"pgstac rejected the search ({'; '.join(named)}): {text}")


def _normalise_cql2(expr: Any) -> Any:
    """Rewrite the older ``between(prop, [lo, hi])`` form into the three-argument one pgstac
    accepts (the embedded backend takes both)."""
    if isinstance(expr, dict):
        out = {k: _normalise_cql2(v) for k, v in expr.items()}
        args = out.get("args")
        if out.get("op") == "between" and isinstance(args, list) and len(args) == 2:
            prop, bounds = args
            if isinstance(bounds, list) and len(bounds) == 2:
                out["args"] = [prop, *bounds]
        return out
    if isinstance(expr, list):
        return [_normalise_cql2(v) for v in expr]
    return expr
