"""Collections of other nodes, from the federated STAC catalog (the items other nodes
registered, replicated here over ``stac.registrations``): one openEO collection per
layer prefix with ``federation:backends`` naming the nodes that hold it."""

from __future__ import annotations

from typing import Any

from gravitas.agents.registration import LAYER_PREFIX
from gravitas.agents.services import NodeServices
from gravitas.storage.catalog.base import MAX_LIMIT, NODE_PROPERTY, SearchParams
from gravitas.streams.openeo.collections import STAC_VERSION, eo_band
from gravitas.streams.openeo.context import API_PREFIX

MAX_PAGES = 20


def _bands(item: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for asset in (item.get("assets") or {}).values():
        if "data" not in (asset.get("roles") or []):
            continue
        for band in asset.get("eo:bands") or []:
            name = str(band.get("name", "")).lower()
            if name and name not in names:
                names.append(name)
    return names


def remote_collections(
    services: NodeServices, base_url: str, local_ids: set[str]
) -> list[dict[str, Any]]:
    """openEO collection documents of the layer prefixes other nodes registered."""
    me = services.settings.node_id
    groups: dict[str, dict[str, Any]] = {}
    token: str | None = None
    for _ in range(MAX_PAGES):
        page = services.catalog.search(SearchParams(federated=True, limit=MAX_LIMIT, token=token))
        for item in page.items:
            props = item.get("properties") or {}
            node = str(props.get(NODE_PROPERTY) or "")
            prefix = str(props.get(LAYER_PREFIX) or "")
            if not node or node == me or not prefix or prefix in local_ids:
                continue
            g = groups.setdefault(
                prefix, {"nodes": set(), "bbox": None, "t": [None, None], "bands": []}
            )
            g["nodes"].add(node)
            bbox = item.get("bbox")
            if isinstance(bbox, list) and len(bbox) >= 4:
                b = [float(v) for v in (bbox[0], bbox[1], bbox[-2], bbox[-1])]
                g["bbox"] = (
                    b
                    if g["bbox"] is None
                    else [min(g["bbox"][0], b[0]), min(g["bbox"][1], b[1]),
                          max(g["bbox"][2], b[2]), max(g["bbox"][3], b[3])]
                )  # fmt: skip
            when = props.get("datetime")
            if isinstance(when, str):
                t0, t1 = g["t"]
                g["t"] = [min(t0, when) if t0 else when, max(t1, when) if t1 else when]
            for band in _bands(item):
                if band not in g["bands"]:
                    g["bands"].append(band)
        token = page.next_token
        if not token:
            break
    return [_doc(prefix, g, base_url) for prefix, g in sorted(groups.items())]


def _doc(prefix: str, g: dict[str, Any], base_url: str) -> dict[str, Any]:
    bbox = g["bbox"] or [-180.0, -90.0, 180.0, 90.0]
    bands = sorted(g["bands"]) or [prefix]
    nodes = sorted(g["nodes"])
    return {
        "stac_version": STAC_VERSION,
        "stac_extensions": ["https://stac-extensions.github.io/datacube/v2.2.0/schema.json"],
        "type": "Collection",
        "id": prefix,
        "title": f"{prefix} (on {', '.join(nodes)})",
        "description": f"Collection {prefix} held by federation node(s) {', '.join(nodes)}",
        "license": "proprietary",
        "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [g["t"]]}},
        "links": [{"rel": "self", "href": f"{base_url}/collections/{prefix}"}],
        "summaries": {"eo:bands": [eo_band(b) for b in bands]},
        "cube:dimensions": {
            "x": {"type": "spatial", "axis": "x", "extent": [bbox[0], bbox[2]],
                  "reference_system": 4326},
            "y": {"type": "spatial", "axis": "y", "extent": [bbox[1], bbox[3]],
                  "reference_system": 4326},
            "t": {"type": "temporal", "extent": g["t"]},
            "bands": {"type": "bands", "values": bands},
        },
        "federation:backends": nodes,
    }  # fmt: skip


def peer_collection(
    services: NodeServices, node_id: str, collection_id: str
) -> dict[str, Any] | None:
    """A collection document as its owner node describes it: asked of the configured
    peer's ``api_url`` with a signed request and used only if the answer is signed by that
    peer's configured key for this request (None otherwise: the caller then describes
    the collection from the federated catalog, which holds only signed registrations)."""
    import httpx

    from gravitas.streams.openeo.errors import PeerAnswerRefusedError
    from gravitas.streams.openeo.peersign import check_answer

    peer = services.settings.peers.get(node_id)
    if peer is None:
        return None
    path = f"{API_PREFIX}/collections/{collection_id}"
    headers = services.identity.sign_request(path, b"")
    try:
        resp = httpx.get(f"{peer.api_url}{path}", headers=headers, timeout=10)
        check_answer(
            resp, headers["X-Gravitas-Signature"], node_id, peer.public_key,
            f"GET collections/{collection_id}",
        )  # fmt: skip
    except (httpx.HTTPError, PeerAnswerRefusedError):
        return None
    if resp.status_code != 200 or len(resp.content) > 4 * 1024 * 1024:
        return None
    try:
        doc = resp.json()
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("id") != collection_id:
        return None
    return doc
