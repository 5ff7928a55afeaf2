"""Local commands next to a running node: find it, and never fight it for its stores.

A ``gravitas node`` holds its data directory (RocksDB's LOCK) and writes
``<data dir>/node.json`` with its edge address. Commands that change the node's data
(``ingest``) then go through that edge; commands that only read pixels (``quicklook``)
open the block store read-only, which RocksDB allows next to its writer.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from gravitas.agents.services import NodeServices
from gravitas.schemas.errors import TransportError
from gravitas.schemas.settings import Settings
from gravitas.streams.transports.edge import NODE_FILE, discover_edge

__all__ = ["reader_services", "running_edge"]


def running_edge(data_dir: Path) -> str | None:
    """The edge URL of the node that holds ``data_dir``, if one is running and answers;
    None when there is no ``node.json`` (or a stale one a dead node left behind)."""
    if not (data_dir / NODE_FILE).exists():
        return None
    try:
        url = discover_edge(data_dir)
    except TransportError:
        return None
    try:
        httpx.get(f"{url.rstrip('/')}/healthz", timeout=5)
    except httpx.HTTPError:
        return None
    return url  # any answer (even 401 from an edge that wants a token) means it runs


def reader_services(settings: Settings) -> NodeServices:
    """Services to read the node's pixels: with a running node on the data dir, its
    RocksDB block store is opened read-only (a view as of now) instead of fighting the
    node for the LOCK."""
    services = NodeServices(settings)
    if settings.block_store is None and running_edge(settings.data_dir) is not None:
        from gravitas.storage.blocks.errors import BlockStoreError
        from gravitas.storage.blocks.rocksdb import RocksBlockStore

        path = (settings.data_dir / "blocks").resolve()
        try:
            services.__dict__["block_store"] = RocksBlockStore(path, read_only=True)
        except BlockStoreError as exc:
            raise BlockStoreError(
                f"a node is running on {settings.data_dir} and its block store cannot be "
                f"read next to it: {exc}"
            ) from exc
    return services
