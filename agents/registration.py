"""Registering items: into the local catalog, and onto ``stac.registrations``.

The catalog keeps the object store's own hrefs (the agents read them); the registration
carries them as URLs of this node's asset route, which other nodes can fetch.

Every item this node owns carries ``gravitas:version`` (bumped on each change, so
replays and out-of-order delivery converge) and, for scenes, the data mode, the layer
prefix its pixel layers are named with, and whether it has been onboarded. A
registration made for a source event is settled in the effect ledger: a replay of that
event registers the item again with the same version and ``gravitas:registered_at``.
Every registration and retraction is signed with the node's key
(:mod:`gravitas.agents.signing`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

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
REGISTERED_AT = "gravitas:registered_at"
SETTLED_BY = "registration"
"""The ledger's agent name of settled registrations (subject ``collection/item id``)."""


def current_version(services: NodeServices, collection: str, item_id: str) -> int:
    """The latest version of an item: stored, or retracted (0 if never seen)."""
    retracted = services.nodes.retracted_at(collection, item_id)
    try:
        item = services.catalog.get_item(collection, item_id)
    except ItemNotFoundError:
        return retracted
    return max(retracted, int(item.get("properties", {}).get(VERSION, 1)))


def _settled(
    services: NodeServices, source: str | None, collection: str, item_id: str, at: str
) -> tuple[int, str]:
    """The version and ``registered_at`` of this registration: new ones, or (a replay of
    ``source``) the ones its first handling chose."""
    version = current_version(services, collection, item_id) + 1
    if source is None:
        return version, at
    fresh = orjson.dumps({"version": version, "registered_at": at}).decode()
    stored = orjson.loads(
        services.ledger.settle(source, SETTLED_BY, f"{collection}/{item_id}", fresh)
    )
    return int(stored["version"]), str(stored["registered_at"])


def register_item(
    services: NodeServices,
    item: Mapping[str, Any],
    source: str | None = None,
    at: datetime | None = None,
) -> ItemRegistered:
    """Upsert an item this node owns (next version) and build its registration event.

    ``source`` is the id of the event this registration is the effect of: a replay of it
    repeats the first registration (same version, same ``registered_at``; a newer
    stored version is kept). ``registered_at`` is ``at`` (the source event's
    ``occurred_at``, so two runs of the same events agree), else the item's own (a
    re-registration keeps when it was first registered), else now."""
    doc = dict(item)
    collection, item_id = str(doc["collection"]), str(doc["id"])
    props = dict(doc.get("properties") or {})
    stamp = at.isoformat() if at else str(props.get(REGISTERED_AT) or datetime.now(UTC).isoformat())
    version, registered_at = _settled(services, source, collection, item_id, stamp)
    props[VERSION] = version
    if source is not None:
        props[REGISTERED_AT] = registered_at
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
