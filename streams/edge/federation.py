"""``/federation/nodes``: this node (with its public key), its configured peers and the
nodes it has heard of on ``stac.registrations``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gravitas.agents.services import NodeServices
from gravitas.storage.catalog.base import MAX_LIMIT, NODE_PROPERTY, SearchParams


def items_per_node(services: NodeServices) -> dict[str, int]:
    """How many items of the (federated) catalog each node owns."""
    counts: dict[str, int] = {}
    token: str | None = None
    while True:
        page = services.catalog.search(SearchParams(federated=True, limit=MAX_LIMIT, token=token))
        for item in page.items:
            node = str(item.get("properties", {}).get(NODE_PROPERTY, ""))
            counts[node] = counts.get(node, 0) + 1
        token = page.next_token
        if not token:
            return counts


def federation_router(services: NodeServices) -> APIRouter:
    """Routes about the federation as seen from this node."""
    router = APIRouter(prefix="/federation", tags=["federation"])

    @router.get("/nodes")
    def nodes() -> dict[str, Any]:
        me = services.settings.node_id
        peers = services.settings.peers
        per_node = items_per_node(services)
        known = {n.node_id: n for n in services.nodes.all()}
        rows = []
        for node_id in sorted(set(known) | set(peers) | {me}):
            info = known.get(node_id)
            peer = peers.get(node_id)
            if node_id == me:
                api_url, public_key = services.public_url, services.identity.public_key
            else:
                api_url = peer.api_url if peer else ""  # only configured URLs are used
                public_key = peer.public_key if peer else ""
            rows.append(
                {
                    "node_id": node_id,
                    "self": node_id == me,
                    "peer": peer is not None,
                    "public_key": public_key,
                    "api_url": api_url,
                    "last_seen": info.last_seen if info else None,
                    "registrations": info.registrations if info else 0,
                    "items": per_node.get(node_id, 0),
                }
            )
        return {"node_id": me, "nodes": rows}

    return router
