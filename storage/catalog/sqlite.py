"""The embedded catalog: SQLite (WAL) with an R-tree on item bboxes.

One file under the node's data dir, shared safely by the node's worker processes
(WAL journal, ``BEGIN IMMEDIATE`` writes, a busy timeout). Items are rows with their
collection, id, owning node, version, normalised start/end datetimes, geometry and the
whole item JSON; CQL2 filters become SQL on ``json_extract`` (:mod:`.cql2sql`) and
geometry predicates run in shapely through an SQL function.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from gravitas.storage.catalog.base import (
    NODE_PROPERTY,
    VERSION_PROPERTY,
    SearchPage,
    SearchParams,
    check_item,
    utc_text,
)
from gravitas.storage.catalog.collections import covering, grow_in_place, new_collection
from gravitas.storage.catalog.cql2sql import column_for, format_ts, to_sql
from gravitas.storage.catalog.errors import (
    CatalogError,
    CollectionNotFoundError,
    InvalidItemError,
    InvalidSearchError,
    ItemNotFoundError,
)
from gravitas.storage.catalog.geometry import bbox_of, bbox_polygon, spatial_relation

__all__ = ["SQLiteCatalog"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    rid INTEGER PRIMARY KEY,
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    node TEXT NOT NULL,
    version INTEGER NOT NULL,
    dt_start TEXT,
    dt_end TEXT,
    geometry TEXT,
    doc TEXT NOT NULL,
    UNIQUE (collection, id)
);
CREATE INDEX IF NOT EXISTS items_dt ON items (dt_start, dt_end);
CREATE INDEX IF NOT EXISTS items_node ON items (node);
CREATE VIRTUAL TABLE IF NOT EXISTS items_rtree USING rtree (rid, minx, maxx, miny, maxy);
"""


def _ts(value: Any) -> str | None:
    return format_ts(str(value)) if value else None


def _gv_ts(value: Any) -> str | None:
    try:
        return _ts(value)
    except InvalidSearchError:
        return None


class SQLiteCatalog:
    """A :class:`~gravitas.storage.catalog.base.Catalog` in one SQLite file."""

    def __init__(self, path: Path | str, node_id: str = "local", timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        """The database file."""
        self.node_id = node_id
        """Default owner of upserted items."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA case_sensitive_like=ON")
            self._db.create_function("gv_spatial", 3, spatial_relation, deterministic=True)
            self._db.create_function("gv_ts", 1, _gv_ts, deterministic=True)
            with self._write() as db:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        db.execute(stmt)
        except sqlite3.Error as exc:
            raise CatalogError(f"cannot open the SQLite catalog {self.path}: {exc}") from exc

    @property
    def url(self) -> str:
        """``sqlite:///abs/path``."""
        return f"sqlite://{self.path.resolve()}"

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except (sqlite3.OperationalError, sqlite3.DataError, OverflowError) as exc:
                raise InvalidSearchError(f"search failed in SQLite: {exc}") from exc

    # --- collections ---------------------------------------------------------------

    def upsert_collection(self, collection: Mapping[str, Any]) -> None:
        """Insert or replace a collection by id; its extents, summaries and item_assets
        are grown to cover the items it already holds."""
        cid = collection.get("id")
        if not isinstance(cid, str) or not cid:
            raise InvalidItemError(f"collection needs a string 'id', got {cid!r}")
        doc = dict(collection)
        doc.setdefault("type", "Collection")
        if doc["type"] != "Collection":
            raise InvalidItemError(f"collection {cid!r} has type {doc['type']!r}, not Collection")
        with self._write() as db:
            rows = db.execute("SELECT doc FROM items WHERE collection = ? ORDER BY rid", (cid,))
            doc = covering(doc, (orjson.loads(r[0]) for r in rows))
            self._store_collection(db, cid, doc)

    @staticmethod
    def _store_collection(db: sqlite3.Connection, cid: str, doc: Mapping[str, Any]) -> None:
        db.execute(
            "INSERT INTO collections (id, doc) VALUES (?, ?) "
            "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            (cid, orjson.dumps(doc).decode()),
        )

    def _grow_collection(self, db: sqlite3.Connection, cid: str, item: Mapping[str, Any]) -> None:
        """Create or grow the item's collection in the item's own write transaction."""
        row = db.execute("SELECT doc FROM collections WHERE id = ?", (cid,)).fetchone()
        current = orjson.loads(row[0]) if row else new_collection(cid, self.node_id)
        grown = grow_in_place(current, item)  # a fresh parse: no copy needed
        text = orjson.dumps(grown).decode()
        if row is None or text != row[0]:
            db.execute(
                "INSERT INTO collections (id, doc) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                (cid, text),
            )

    def get_collection(self, collection_id: str) -> dict[str, Any]:
        """The collection dict, or :class:`CollectionNotFoundError`."""
        rows = self._read("SELECT doc FROM collections WHERE id = ?", (collection_id,))
        if not rows:
            raise CollectionNotFoundError(
                f"collection {collection_id!r} not found; list them with list_collections()"
            )
        out: dict[str, Any] = orjson.loads(rows[0][0])
        return out

    def list_collections(self) -> list[dict[str, Any]]:
        """Every collection, by id."""
        return [orjson.loads(r[0]) for r in self._read("SELECT doc FROM collections ORDER BY id")]

    def delete_collection(self, collection_id: str) -> bool:
        """Remove a collection and its items."""
        with self._write() as db:
            db.execute(
                "DELETE FROM items_rtree WHERE rid IN (SELECT rid FROM items WHERE collection = ?)",
                (collection_id,),
            )
            db.execute("DELETE FROM items WHERE collection = ?", (collection_id,))
            cur = db.execute("DELETE FROM collections WHERE id = ?", (collection_id,))
            return cur.rowcount > 0

    # --- items ---------------------------------------------------------------------

    def upsert_item(
        self, item: Mapping[str, Any], owning_node: str | None = None, version: int = 1
    ) -> bool:
        """Store an item unless a newer version is stored (then False)."""
        iid, cid, props = _check_item(item)
        bbox = bbox_of(item)
        dt_start = _ts(props.get("start_datetime") or props.get("datetime"))
        dt_end = _ts(props.get("end_datetime") or props.get("datetime"))
        doc = dict(item)
        doc["properties"] = {k: v for k, v in props.items() if k != NODE_PROPERTY}
        doc["properties"][VERSION_PROPERTY] = int(version)
        geometry = orjson.dumps(item["geometry"]).decode() if item.get("geometry") else None
        node = owning_node or self.node_id
        with self._write() as db:
            row = db.execute(
                "SELECT rid, version FROM items WHERE collection = ? AND id = ?", (cid, iid)
            ).fetchone()
            if row is not None and row[1] > version:
                return False
            cur = db.execute(
                "INSERT INTO items (collection, id, node, version, dt_start, dt_end, geometry, "
                "doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (collection, id) DO UPDATE SET "
                "node = excluded.node, version = excluded.version, dt_start = excluded.dt_start, "
                "dt_end = excluded.dt_end, geometry = excluded.geometry, doc = excluded.doc "
                "RETURNING rid",
                (cid, iid, node, version, dt_start, dt_end, geometry, orjson.dumps(doc).decode()),
            )
            rid = cur.fetchone()[0]
            db.execute("DELETE FROM items_rtree WHERE rid = ?", (rid,))
            if bbox is not None:
                w, s, e, n = bbox
                db.execute(
                    "INSERT INTO items_rtree (rid, minx, maxx, miny, maxy) VALUES (?, ?, ?, ?, ?)",
                    (rid, min(w, e), max(w, e), s, n),
                )
            self._grow_collection(db, cid, doc)
        return True

    def get_item(self, collection_id: str, item_id: str) -> dict[str, Any]:
        """The item (with ``gravitas:node``), or :class:`ItemNotFoundError`."""
        rows = self._read(
            "SELECT doc, node FROM items WHERE collection = ? AND id = ?",
            (collection_id, item_id),
        )
        if not rows:
            raise ItemNotFoundError(f"item {item_id!r} not found in collection {collection_id!r}")
        return _with_node(rows[0][0], rows[0][1])

    def delete_item(self, collection_id: str, item_id: str, version: int | None = None) -> bool:
        """Remove an item (only if not newer than ``version``, when given)."""
        with self._write() as db:
            row = db.execute(
                "SELECT rid, version FROM items WHERE collection = ? AND id = ?",
                (collection_id, item_id),
            ).fetchone()
            if row is None or (version is not None and row[1] > version):
                return False
            db.execute("DELETE FROM items_rtree WHERE rid = ?", (row[0],))
            db.execute("DELETE FROM items WHERE rid = ?", (row[0],))
            return True

    def count(self, collection_id: str | None = None, federated: bool = True) -> int:
        """Number of items."""
        where, params = [], []
        if collection_id is not None:
            where.append("collection = ?")
            params.append(collection_id)
        if not federated:
            where.append("node = ?")
            params.append(self.node_id)
        sql = "SELECT COUNT(*) FROM items" + (" WHERE " + " AND ".join(where) if where else "")
        return int(self._read(sql, params)[0][0])

    # --- search --------------------------------------------------------------------

    def search(self, params: SearchParams) -> SearchPage:
        """One page of matching items; the token is an offset bound to the query."""
        where, args = self._where(params)
        where_sql = " WHERE " + " AND ".join(where) if where else ""
        order, order_args = self._order(params)
        digest = _digest(params)
        offset = _decode_token(params.token, digest) if params.token else 0
        matched = int(self._read(f"SELECT COUNT(*) FROM items{where_sql}", args)[0][0])
        rows = self._read(
            f"SELECT doc, node FROM items{where_sql} ORDER BY {order} LIMIT ? OFFSET ?",
            [*args, *order_args, params.limit, offset],
        )
        items = [_with_node(doc, node) for doc, node in rows]
        nxt = offset + len(items)
        token = _encode_token(nxt, digest) if nxt < matched and items else None
        return SearchPage(items=items, matched=matched, next_token=token)

    def _where(self, p: SearchParams) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        args: list[Any] = []
        if not p.federated:
            where.append("items.node = ?")
            args.append(self.node_id)
        if p.collections is not None:
            where.append(f"items.collection IN ({', '.join('?' * len(p.collections))})")
            args.extend(p.collections)
            if not p.collections:
                where.append("0")
        if p.ids is not None:
            where.append(f"items.id IN ({', '.join('?' * len(p.ids))})")
            args.extend(p.ids)
            if not p.ids:
                where.append("0")
        start, end = p.interval
        if start is not None:
            where.append("items.dt_end >= ?")
            args.append(utc_text(start))
        if end is not None:
            where.append("items.dt_start <= ?")
            args.append(utc_text(end))
        region = None
        if p.bbox2d is not None:
            region = bbox_polygon(p.bbox2d)
        elif p.intersects is not None:
            from gravitas.storage.catalog.geometry import geometry_from_json

            region = geometry_from_json(p.intersects)
        if region is not None:
            rtree = []
            parts = getattr(region, "geoms", [region]) if p.bbox2d is not None else [region]
            for part in parts:
                w, s, e, n = part.bounds
                rtree.append("(minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?)")
                args.extend([e, w, n, s])
            where.append(
                "items.rid IN (SELECT rid FROM items_rtree WHERE " + " OR ".join(rtree) + ")"
            )
            where.append("gv_spatial('intersects', items.geometry, ?) = 1")
            args.append(orjson.dumps(region.__geo_interface__).decode())
        flt = p.filter_json()
        if flt is not None:
            sql, fargs = to_sql(flt)
            where.append(sql)
            args.extend(fargs)
        return where, args

    @staticmethod
    def _order(p: SearchParams) -> tuple[str, list[Any]]:
        """ORDER BY text and its parameters (JSON paths of sort properties are bound)."""
        args: list[Any] = []

        def bind(value: Any) -> str:
            args.append(value)
            return "?"

        keys = [
            f"{column_for(s.field, bind, 'sortby')} {'DESC' if s.direction == 'desc' else 'ASC'}"
            for s in p.sortby
        ]
        if not keys:
            keys = ["items.dt_start DESC"]
        return ", ".join([*keys, "items.collection ASC", "items.id ASC"]), args

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> SQLiteCatalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_item(item: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The common item checks, plus the start/end timestamps the index stores."""
    iid, cid, props = check_item(item)
    try:
        _ts(props.get("start_datetime") or props.get("datetime"))
        _ts(props.get("end_datetime") or props.get("datetime"))
    except InvalidSearchError as exc:
        raise InvalidItemError(f"item {iid!r}: {exc}") from exc
    return iid, cid, props


def _with_node(doc: str, node: str) -> dict[str, Any]:
    item: dict[str, Any] = orjson.loads(doc)
    item.setdefault("properties", {})[NODE_PROPERTY] = node
    return item


def _digest(p: SearchParams) -> str:
    key = orjson.dumps(
        [
            p.bbox,
            p.intersects,
            p.datetime,
            p.collections,
            p.ids,
            p.filter_json(),
            [(s.name, s.direction) for s in p.sortby],
            p.federated,
        ],
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(key).hexdigest()[:12]


def _encode_token(offset: int, digest: str) -> str:
    return base64.urlsafe_b64encode(f"{digest}:{offset}".encode()).decode().rstrip("=")


def _decode_token(token: str, digest: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        tdigest, offset = text.split(":")
        value = int(offset)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidSearchError(
            f"paging token {token!r} is malformed; restart the search"
        ) from exc
    if tdigest != digest or not 0 <= value < 2**62:
        raise InvalidSearchError(
            f"paging token {token!r} belongs to a different search; use the token from the "
            "previous page of this same search"
        )
    return value
