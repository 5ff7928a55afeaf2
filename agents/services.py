"""The storage a node's agents share, opened lazily once per worker."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property, partial
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from gravitas.schemas.settings import Settings
from gravitas.storage.ledger import EffectLedger

P = ParamSpec("P")
T = TypeVar("T")

if TYPE_CHECKING:
    from gravitas.agents.signing import NodeIdentity
    from gravitas.storage.blocks import BlockStore
    from gravitas.storage.catalog import Catalog
    from gravitas.storage.nodes import NodeDirectory
    from gravitas.storage.objects import ObjectStore
    from gravitas.storage.parked import ParkedRequests
    from gravitas.storage.pixels import LayerRegistry


class NodeServices:
    """Handles to the node's stores; each is opened on first use.

    Agents add what they need here as ``cached_property`` s, so a worker that never
    runs an agent never opens its store.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.public_url = settings.edge_url
        """How other nodes reach this node's edge (set to the bound address at start)."""

    def _secret(self, name: str) -> str | None:
        value = getattr(self.settings, name)
        return value.get_secret_value() if value is not None else None

    @cached_property
    def compute(self) -> ThreadPoolExecutor:
        """The pool for CPU-heavy agent work: one thread per CPU but one, which the event
        loop needs for the events themselves. Measured on 2 cores (bench/datacube.py,
        61 scenes onboarded by one request): 1.14 s with one compute thread, 1.42 s with
        two and 1.7 s through asyncio's default pool of six (GIL contention)."""
        workers = self.settings.compute_threads or max(1, (os.cpu_count() or 2) - 1)
        return ThreadPoolExecutor(workers, thread_name_prefix="gravitas-compute")

    async def run_compute(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``await`` ``fn(*args, **kwargs)`` on :attr:`compute` (pure local work only:
        a function that waits for other events there could starve the pool)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.compute, partial(fn, *args, **kwargs))

    @cached_property
    def parked(self) -> ParkedRequests:
        """Requests parked until onboarding ends (written by the parking agent only)."""
        from gravitas.storage.parked import ParkedRequests

        return ParkedRequests(self.data_dir / "parked.sqlite")

    @cached_property
    def ledger(self) -> EffectLedger:
        """The effect ledger (SQLite, shared by the node's worker processes)."""
        return EffectLedger(self.data_dir / "ledger.sqlite")

    @cached_property
    def block_store(self) -> BlockStore:
        """The pixel block store: RocksDB under data_dir by default, or S3."""
        from gravitas.storage.blocks import open_block_store
        from gravitas.streams.metrics.storage import timed_block_store

        url = self.settings.block_store or f"rocksdb://{(self.data_dir / 'blocks').resolve()}"
        store = open_block_store(url, self._secret("s3_access_key"), self._secret("s3_secret_key"))
        return timed_block_store(store)

    @cached_property
    def object_store(self) -> ObjectStore:
        """Whole files (COGs, Zarr, imported assets): a directory by default, or S3."""
        from gravitas.storage.objects import open_object_store

        url = self.settings.object_store or (self.data_dir / "objects").resolve()
        return open_object_store(url, self._secret("s3_access_key"), self._secret("s3_secret_key"))

    @cached_property
    def layers(self) -> LayerRegistry:
        """The raster layer registry (SQLite under data_dir, shared by worker processes)."""
        from gravitas.storage.pixels import LayerRegistry

        return LayerRegistry(self.data_dir / "layers.sqlite")

    @cached_property
    def catalog(self) -> Catalog:
        """The node's STAC catalog: SQLite under data_dir by default, or ``settings.catalog``."""
        from gravitas.storage.catalog.factory import open_catalog
        from gravitas.streams.metrics.storage import timed_catalog

        url = getattr(self.settings, "catalog", None) or self.data_dir / "catalog.sqlite"
        return timed_catalog(open_catalog(url, node_id=self.settings.node_id))

    @cached_property
    def identity(self) -> NodeIdentity:
        """This node's Ed25519 signing key (``<data_dir>/node_key`` or the setting)."""
        from gravitas.agents.signing import NodeIdentity

        return NodeIdentity.load(self.settings)

    @cached_property
    def nodes(self) -> NodeDirectory:
        """The federation nodes this node has heard of."""
        from gravitas.storage.nodes import NodeDirectory

        return NodeDirectory(self.data_dir / "nodes.sqlite")

    def close(self) -> None:
        """Close everything that was opened."""
        if "compute" in self.__dict__:
            self.__dict__.pop("compute").shutdown(wait=True, cancel_futures=True)
        for name in ("ledger", "block_store", "catalog", "nodes", "parked"):
            if name in self.__dict__:
                self.__dict__[name].close()
