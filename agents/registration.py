"""Registering items: into the local catalog, and onto ``stac.registrations``.

The catalog keeps the object store's own hrefs (the agents read them); the registration
carries them as URLs of this node's asset route, which other nodes can fetch.

Every item this node owns carries ``gravitas:version`` (bumped on each change, so
replays and out-of-order delivery converge) and, for scenes, the data mode, the layer
prefix its pixel layers are named with, and whether it has been onboarded. Every
registration and retraction is signed with the node's key (:mod:`gravitas.agents.signing`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gravitas.agents.services import NodeServices
from gravitas.schemas.events import ItemRegistered, ItemRetracted
from gravitas.storage.catalog.errors import ItemNotFoundError
from gravitas.storage.objects.public import public_item

VERSION = "gravitas:version"
MODE = "gravitas:mode"
ONBOARDED = "gravitas:onboarded"
LAYER_PREFIX = "gravitas:layer_prefix"
SCENE_ID = "gravitas:scene_id"
NODE = "gravitas:node"


def current_version(services: NodeServices, collection: str, item_id: str) -> int:
    """The latest version of an item: stored, or retracted (0 if never seen)."""
    retracted = services.nodes.retracted_at(collection, item_id)
    try:
        item = services.catalog.get_item(collection, item_id)
    except ItemNotFoundError:
        return retracted
    return max(retracted, int(item.get("properties", {}).get(VERSION, 1)))


def register_item(services: NodeServices, item: Mapping[str, Any]) -> ItemRegistered:
    """Upsert an item this node owns (next version) and build its registration event."""
    doc = dict(item)
    collection, item_id = str(doc["collection"]), str(doc["id"])
    version = current_version(services, collection, item_id) + 1
    props = dict(doc.get("properties") or {})
    props[VERSION] = version
    props.pop(NODE, None)
    doc["properties"] = props
    services.catalog.upsert_item(doc, owning_node=services.settings.node_id, version=version)
    registered = ItemRegistered(
        item_id=item_id,
        collection=collection,
        item=public_item(doc, services.object_store, services.public_url),
        owning_node=services.settings.node_id,
        api_url=services.public_url,
        asset_base_url=services.public_url,
        version=version,
    )
    return services.identity.sign(registered)


def retract_item(services: NodeServices, collection: str, item_id: str) -> ItemRetracted:
    """Delete an item this node owns and build its retraction event."""
    version = current_version(services, collection, item_id) + 1
    services.catalog.delete_item(collection, item_id)
    services.nodes.tombstone(collection, item_id, version)
    retracted = ItemRetracted(
        item_id=item_id,
        collection=collection,
        owning_node=services.settings.node_id,
        version=version,
    )
    return services.identity.sign(retracted)
