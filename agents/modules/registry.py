"""The node's module registry: signed :class:`ModuleRecord` s, one writer (the registry
agent, reading the one-partition federation topic ``modules.registry``).

A record is accepted only when it is signed by its owner's key (this node's or a
configured peer's) and, for a version already known, comes from the same owner with a
higher revision; anything else is refused with :class:`SignatureError` /
:class:`OwnerMismatchError` and nothing stored changes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

import orjson
from packaging.version import Version

from gravitas.agents.modules.errors import LifecycleError, UnknownModuleError
from gravitas.agents.modules.model import Module, split_ref
from gravitas.agents.signing import NodeIdentity, OwnerMismatchError, verify_event
from gravitas.schemas.workflows import ModuleRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS modules (
    name TEXT NOT NULL, version TEXT NOT NULL, owner TEXT NOT NULL, revision INTEGER NOT NULL,
    record BLOB NOT NULL, PRIMARY KEY (name, version))
"""


def record_for(module: Module, identity: NodeIdentity, revision: int = 1) -> ModuleRecord:
    """A signed record of ``module`` owned by ``identity``'s node."""
    owned = module.model_copy(update={"owner": identity.node_id})
    rec = ModuleRecord(
        ref=owned.ref,
        owner=identity.node_id,
        revision=revision,
        module=owned.model_dump(mode="json"),
        node_id=identity.node_id,
    )
    return identity.sign(rec)


class ModuleRegistry:
    """Module versions by name (SQLite, safe across a node's worker processes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def apply(self, record: ModuleRecord, keys: Mapping[str, str]) -> bool:
        """Store a verified record; False when it is a replay of what is stored."""
        verify_event(record, record.owner, keys)  # SignatureError / UnknownPeerError
        module = Module.model_validate(record.module)
        if module.ref != record.ref or module.owner != record.owner:
            raise OwnerMismatchError(
                f"record {record.ref!r} carries module {module.ref!r} of {module.owner!r}; "
                "the record's ref and owner must match its module"
            )
        with self._lock:
            row = self._db.execute(
                "SELECT owner, revision FROM modules WHERE name=? AND version=?",
                (module.name, module.version),
            ).fetchone()
            if row is not None:
                if row[0] != record.owner:
                    raise OwnerMismatchError(
                        f"module {record.ref} is owned by node {row[0]!r}; node "
                        f"{record.owner!r} may not change it"
                    )
                if record.revision <= int(row[1]):
                    return False
            self._db.execute(
                "INSERT OR REPLACE INTO modules VALUES (?, ?, ?, ?, ?)",
                (
                    module.name,
                    module.version,
                    record.owner,
                    record.revision,
                    orjson.dumps(record.model_dump(mode="json")),
                ),
            )
        return True

    def records(self) -> list[ModuleRecord]:
        """Every stored record."""
        with self._lock:
            rows = self._db.execute("SELECT record FROM modules ORDER BY name, version").fetchall()
        return [ModuleRecord.model_validate(orjson.loads(r[0])) for r in rows]

    def record(self, ref: str) -> ModuleRecord | None:
        """The stored record of ``name@version``, if any."""
        name, version = split_ref(ref)
        with self._lock:
            row = self._db.execute(
                "SELECT record FROM modules WHERE name=? AND version=?", (name, version)
            ).fetchone()
        return None if row is None else ModuleRecord.model_validate(orjson.loads(row[0]))

    def modules(self) -> list[Module]:
        """Every stored module version."""
        return [Module.model_validate(r.module) for r in self.records()]


class ModuleCatalog:
    """Lookup over the built-in, entry-point and registered modules (registered win)."""

    def __init__(self, modules: Iterable[Module]) -> None:
        self._by_ref: dict[str, Module] = {}
        for m in modules:
            self._by_ref[m.ref] = m

    def get(self, ref: str) -> Module:
        """The module ``name@version``, or :class:`UnknownModuleError` listing versions."""
        name, _ = split_ref(ref)
        found = self._by_ref.get(ref)
        if found is not None:
            return found
        versions = self.versions(name)
        if versions:
            raise UnknownModuleError(
                f"module {name!r} has no version {ref.partition('@')[2]!r}; known: "
                f"{', '.join(versions)}"
            )
        raise UnknownModuleError(
            f"unknown module {name!r}; known: {', '.join(sorted(self.names())) or 'none'}"
        )

    def names(self) -> set[str]:
        """Every module name."""
        return {m.name for m in self._by_ref.values()}

    def versions(self, name: str) -> list[str]:
        """The versions of ``name``, oldest first."""
        return sorted((m.version for m in self._by_ref.values() if m.name == name), key=Version)

    def all(self) -> list[Module]:
        """Every module, by name then version."""
        return sorted(self._by_ref.values(), key=lambda m: (m.name, Version(m.version)))


def change_lifecycle(record: ModuleRecord, lifecycle: str, identity: NodeIdentity) -> ModuleRecord:
    """The next signed revision of ``record`` with a new lifecycle (owner only)."""
    if record.owner != identity.node_id:
        raise OwnerMismatchError(
            f"module {record.ref} is owned by node {record.owner!r}; only it may change it"
        )
    module = Module.model_validate(record.module)
    order = ["draft", "published", "deprecated"]
    if order.index(lifecycle) < order.index(module.lifecycle):
        raise LifecycleError(
            f"module {record.ref} is {module.lifecycle}; it cannot go back to {lifecycle}"
        )
    changed = module.model_copy(update={"lifecycle": lifecycle})
    return record_for(changed, identity, record.revision + 1)
