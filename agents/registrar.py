"""The registrar: upserts the federation's registrations into this node's catalog.

Every node consumes ``stac.registrations`` (a federation topic) with its own group.
Remote items are upserted with their owning node and version (an older version never
overwrites a newer one), retractions delete when they are not older than what is
stored (and leave a tombstone, so an older registration replayed later cannot bring the
item back): replaying the topic from the beginning leaves the catalog unchanged. The
node's own registrations are already in its catalog; they only refresh the directory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.agents.services import NodeServices
from gravitas.agents.signing import (
    OwnerMismatchError,
    signed_by,
    trusted_keys,
    verify_event,
)
from gravitas.schemas.base import Event
from gravitas.schemas.events import ItemRegistered, ItemRetracted
from gravitas.storage.catalog.base import NODE_PROPERTY
from gravitas.storage.catalog.errors import ItemNotFoundError


def check_trusted(services: NodeServices, event: ItemRegistered | ItemRetracted) -> None:
    """Signed by its owning node's configured key, and not about another node's item.

    A node id that is not configured is still accepted when the event is signed with this
    node's own key: another worker process of this deployment (sharing the data dir or
    ``GRAVITAS_SIGNING_KEY``) that runs under its own node id."""
    me = services.identity
    keys = trusted_keys(services.settings, me)
    if event.owning_node in keys or not signed_by(event, me):
        verify_event(event, event.owning_node, keys)
    try:
        stored = services.catalog.get_item(event.collection, event.item_id)
    except ItemNotFoundError:
        return
    owner = str(stored.get("properties", {}).get(NODE_PROPERTY, ""))
    if owner and owner != event.owning_node:
        raise OwnerMismatchError(
            f"{type(event).__name__} of {event.collection}/{event.item_id} by node "
            f"{event.owning_node!r}: the item is owned by node {owner!r}, only it may change it"
        )


class RegistrarAgent(Agent):
    """``stac.registrations`` -> the federated part of the local catalog."""

    name = "registrar"
    topic = "stac.registrations"

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        await asyncio.to_thread(self._apply, event, ctx)  # SQLite work off the event loop
        return []

    def _apply(self, event: Event, ctx: AgentContext) -> None:
        services = ctx.services
        if isinstance(event, ItemRegistered | ItemRetracted):
            check_trusted(services, event)
        if isinstance(event, ItemRegistered):
            services.nodes.seen(
                event.owning_node,
                event.api_url,
                event.asset_base_url,
                event.occurred_at.timestamp(),
            )
            retracted = services.nodes.retracted_at(event.collection, event.item_id)
            if event.owning_node != ctx.node_id and event.version > retracted:
                stored = services.catalog.upsert_item(
                    event.item, owning_node=event.owning_node, version=event.version
                )
                ctx.log.info(
                    "remote item %s/%s v%d from %s: %s",
                    event.collection,
                    event.item_id,
                    event.version,
                    event.owning_node,
                    "stored" if stored else "kept newer",
                )
        elif isinstance(event, ItemRetracted):
            node = services.nodes.get(event.owning_node)
            services.nodes.seen(
                event.owning_node,
                node.api_url if node else "",
                node.asset_base_url if node else "",
                event.occurred_at.timestamp(),
            )
            services.nodes.tombstone(event.collection, event.item_id, event.version)
            if event.owning_node != ctx.node_id:
                services.catalog.delete_item(event.collection, event.item_id, version=event.version)
