"""Where a graph computes: dask's threads (default), sync, or a dask.distributed cluster.

``GRAVITAS_DASK_SCHEDULER``: ``threads`` | ``sync`` | ``local-cluster:N`` (a
``LocalCluster`` of N worker processes started once per node process) |
``tcp://host:port`` (an existing scheduler). Distributed workers read blocks from the
shared S3 block store through :class:`~gravitas.agents.graphs.handles.StoreHandle`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from gravitas.schemas.errors import ConfigError

_CLIENTS: dict[str, Any] = {}
_LOCK = threading.Lock()
_LOCAL = re.compile(r"^local-cluster:(\d{1,2})$")
_TCP = re.compile(r"^tls?://[A-Za-z0-9.\-\[\]:]+:\d{1,5}$|^tcp://[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


def is_distributed(spec: str | None) -> bool:
    return bool(spec) and spec not in ("threads", "sync", "synchronous")  # type: ignore[operator]


def check_spec(spec: str | None) -> str:
    """The canonical scheduler spec, or :class:`ConfigError` naming the bad value."""
    spec = (spec or "threads").strip()
    if spec in ("threads", "sync", "synchronous"):
        return "sync" if spec == "synchronous" else spec
    m = _LOCAL.match(spec)
    if m and 1 <= int(m.group(1)) <= 64:
        return spec
    if _TCP.match(spec):
        return spec
    raise ConfigError(
        f"GRAVITAS_DASK_SCHEDULER={spec[:80]!r} is not a scheduler; use threads, sync, "
        "local-cluster:N (1..64) or tcp://host:port"
    )


def client_for(spec: str) -> Any:
    """The dask.distributed client of ``spec`` (one per spec per process)."""
    from distributed import Client, LocalCluster

    with _LOCK:
        client = _CLIENTS.get(spec)
        if client is not None and client.status == "running":
            return client
        m = _LOCAL.match(spec)
        if m:
            cluster = LocalCluster(
                n_workers=int(m.group(1)), threads_per_worker=1, processes=True,
                host="127.0.0.1", dashboard_address=None,
            )  # fmt: skip
            client = Client(cluster, set_as_default=False)
        else:
            client = Client(spec, set_as_default=False, timeout=10)
        _CLIENTS[spec] = client
        return client


def scheduler_get(spec: str | None) -> str | Callable[..., Any]:
    """What ``dask.config.set(scheduler=...)`` takes for ``spec``."""
    spec = check_spec(spec)
    if not is_distributed(spec):
        return spec
    return client_for(spec).get  # type: ignore[no-any-return]


def close_clients() -> None:
    """Close every client (and the local clusters) this process started."""
    with _LOCK:
        for client in _CLIENTS.values():
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
        _CLIENTS.clear()
