"""Routing requests to the node that holds the data; only results travel back.

A request for a layer this node does not hold is looked up in the federated catalog
(items registered by other nodes carry their layer prefix and owning node) and sent to
the owner's edge (``POST {api_url}/rpc/{topic}``), which runs it where the data lives.
"""

from __future__ import annotations

import httpx

from gravitas.agents.registration import LAYER_PREFIX
from gravitas.agents.services import NodeServices
from gravitas.schemas.base import Event
from gravitas.schemas.codec import decode, encode
from gravitas.schemas.errors import NotFoundError, TransportError
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
    node = services.nodes.get(node_id)
    if node is None or not node.api_url:
        raise NotFoundError(f"node {node_id!r} is not known here (no registration seen from it)")
    token = services.settings.api_token
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
    url = f"{node.api_url.rstrip('/')}/rpc/{topic}"
    try:
        resp = httpx.post(
            url,
            content=encode(event),
            headers=headers,
            params={"timeout_s": timeout_s},
            timeout=timeout_s + 10,
        )
    except httpx.HTTPError as exc:
        raise TransportError(f"node {node_id} at {url} is unreachable: {exc}") from exc
    if resp.status_code != 200:
        raise TransportError(f"node {node_id} answered {resp.status_code}: {resp.text[:500]}")
    return decode(resp.content, reply_types)
