"""Where a process graph runs (openeo-aggregator's rules, on the federated catalog).

* A graph whose ``load_collection`` collections are all on this node runs here.
* A graph whose collections are all on one other node is forwarded to that node's
  openEO ``/result`` (the configured peer's ``api_url`` only, signed with this node's
  key: :mod:`gravitas.agents.signing`); only the result bytes come back, and only when
  that node's configured key signed them for this request, status and body
  (:mod:`gravitas.streams.openeo.peersign`); any other answer is refused, unused.
* A graph spanning nodes is refused with an error naming the nodes (the aggregator's
  "no single back-end has all collections" rule).

Which node holds a collection: this node's layer registry, else the federated STAC
catalog (items other nodes registered carry their layer prefix and node:
:func:`gravitas.agents.routing.owner_of_layer`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from gravitas.agents.routing import owner_of_layer
from gravitas.agents.services import NodeServices
from gravitas.streams.openeo.collections import local_collections
from gravitas.streams.openeo.errors import (
    CollectionNotFoundError,
    OpenEOError,
)
from gravitas.streams.openeo.peersign import answer_error, post_signed

log = logging.getLogger("gravitas.openeo.federation")
OPENEO_PREFIX = "/openeo/1.2"


@dataclass(frozen=True)
class Placement:
    node_id: str
    """Where the graph runs (this node's id when local)."""
    local: bool


def owner_of_collection(services: NodeServices, collection_id: str) -> str | None:
    """The node holding a collection (this node's id first), or None."""
    if collection_id in local_collections(services.layers):
        return services.settings.node_id
    return owner_of_layer(services, collection_id)


def place(services: NodeServices, collection_ids: Iterable[str]) -> Placement:
    """Where a graph loading ``collection_ids`` runs, or an error naming the nodes."""
    me = services.settings.node_id
    owners: dict[str, str] = {}
    for cid in sorted(set(collection_ids)):
        owner = owner_of_collection(services, cid)
        if owner is None:
            raise CollectionNotFoundError(
                f"collection {cid!r} is not on this node nor on any node of the federation; "
                "GET /collections lists them"
            )
        owners[cid] = owner
    nodes = sorted(set(owners.values()))
    if not nodes or nodes == [me]:
        return Placement(me, True)
    if len(nodes) > 1:
        where = ", ".join(f"{c} on {n}" for c, n in sorted(owners.items()))
        raise OpenEOError(
            f"the process graph spans nodes {', '.join(nodes)} ({where}); a graph must load "
            "collections of one node: split it per node",
            code="ProcessGraphInvalid",
            status=400,
        )
    return Placement(nodes[0], False)


def forward_result(
    services: NodeServices, node_id: str, body: bytes, timeout_s: float = 600.0
) -> tuple[bytes, str, dict[str, str]]:
    """POST a ``/result`` body to peer ``node_id``; ``(bytes, content type, headers)`` of
    its answer once verified (:class:`PeerAnswerRefusedError` naming the node when the
    answer is unsigned, signed by another key, for another request, or stale)."""
    peer = services.settings.peers.get(node_id)
    if peer is None:
        raise OpenEOError(
            f"collection data is on node {node_id!r}, which is not a configured peer of "
            f"this node (configured: {sorted(services.settings.peers)}); add it to "
            "GRAVITAS_PEERS",
            code="CollectionNotFound",
            status=404,
        )
    path = f"{OPENEO_PREFIX}/result"
    log.info(
        "openEO /result forwarded to node %s at %s%s (%d bytes of graph)",
        node_id, peer.api_url, path, len(body),
    )  # fmt: skip
    resp = post_signed(services.identity, node_id, peer, path, body, timeout_s, "/result")
    ctype = resp.headers.get("content-type", "application/octet-stream")
    if resp.status_code != 200:
        message, code = answer_error(resp)
        raise OpenEOError(
            f"node {node_id} answered {resp.status_code}: {message}",
            code=code,
            status=resp.status_code if 400 <= resp.status_code < 600 else 502,
        )
    log.info("openEO /result from node %s: %d bytes of %s", node_id, len(resp.content), ctype)
    keep = {k: v for k, v in resp.headers.items() if k.lower() in ("content-disposition",)}
    return resp.content, ctype, keep
