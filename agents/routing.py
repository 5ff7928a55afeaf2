"""Routing requests to the node that holds the data; only results travel back.

A request for a layer this node does not hold is looked up in the federated catalog
(items registered by other nodes carry their layer prefix and owning node) and sent to
the owner's edge (``POST {api_url}/rpc/{topic}``), which runs it where the data lives.
The owner must be a configured peer (``Settings.peers``): the request goes to the
``api_url`` configured for it, never to a URL taken from a message, and is signed with
this node's key instead of carrying a bearer token.
"""

from __future__ import annotations

import httpx

from gravitas.agents.registration import LAYER_PREFIX
from gravitas.agents.services import NodeServices
from gravitas.agents.signing import UnknownPeerError
from gravitas.schemas.base import Event
from gravitas.schemas.codec import decode, encode
from gravitas.schemas.errors import RequestError, TransportError
from gravitas.storage.catalog.base import NODE_PROPERTY, SearchParams


def layer_prefixes(layer: str) -> list[str]:
    """Every prefix a layer name can come from: ``a_b_c`` -> ``a_b_c``, ``a_b``, ``a``."""
    parts = layer.split("_")
    return ["_".join(parts[:i]) for i in range(len(parts), 0, -1)]


def owner_of_layer(services: NodeServices, layer: str) -> str | None:
    """The other node whose registered items provide ``layer``, if any."""
    page = services.catalog.search(
        SearchParams(
            federated=True,
            filter={
                "op": "in",
                "args": [{"property": LAYER_PREFIX}, layer_prefixes(layer)],
            },
            filter_lang="cql2-json",
            limit=100,
        )
    )
    me = services.settings.node_id
    owners = {str(i["properties"].get(NODE_PROPERTY)) for i in page.items} - {me, "None"}
    return sorted(owners)[0] if owners else None


def forward(
    services: NodeServices,
    node_id: str,
    topic: str,
    event: Event,
    reply_types: list[type[Event]],
    timeout_s: float = 300.0,
) -> Event:
    """Run ``event`` on node ``node_id`` through its edge and return its reply."""
    peer = services.settings.peers.get(node_id)
    if peer is None:
        raise UnknownPeerError(
            f"node {node_id!r} owns the data but is not a configured peer of this node "
            f"(configured: {sorted(services.settings.peers)}); add it to GRAVITAS_PEERS"
        )
    path = f"/rpc/{topic}"
    url = f"{peer.api_url}{path}"
    body = encode(event)
    headers = services.identity.sign_request(path, body)
    try:
        resp = httpx.post(
            url,
            content=body,
            headers={**headers, "Content-Type": "application/json"},
            params={"timeout_s": timeout_s},
            timeout=timeout_s + 10,
        )
    except httpx.HTTPError as exc:
        raise TransportError(f"node {node_id} at {url} is unreachable: {exc}") from exc
    if resp.status_code in (400, 401, 403, 404, 413, 422):  # retrying will not help
        raise RequestError(
            f"node {node_id} refused the request ({resp.status_code}): {resp.text[:500]}"
        )
    if resp.status_code != 200:
        raise TransportError(f"node {node_id} answered {resp.status_code}: {resp.text[:500]}")
    return decode(resp.content, reply_types)
