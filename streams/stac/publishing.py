"""STAC transactions that the federation sees: versioned upserts published on
``stac.registrations`` (the API's handlers run in worker threads; publishing happens on
the node's event loop). Items another node owns are refused: only their owner changes
them (its registrations reach this catalog through the registrar)."""

from __future__ import annotations

import asyncio
from typing import Any

from gravitas.agents.registration import register_item, retract_item
from gravitas.agents.services import NodeServices
from gravitas.agents.signing import OwnerMismatchError
from gravitas.schemas.base import Event
from gravitas.schemas.codec import encode
from gravitas.storage.catalog.base import NODE_PROPERTY
from gravitas.storage.catalog.errors import ItemNotFoundError
from gravitas.streams.transports.base import Transport


class PublishedRegistrations:
    """Implements the STAC router's ``Registrations`` hook for a node."""

    def __init__(
        self, services: NodeServices, transport: Transport, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.services = services
        self.transport = transport
        self.loop = loop

    def _publish(self, event: Event) -> None:
        coro = self.transport.publish("stac.registrations", event.key().encode(), encode(event))
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def _check_owner(self, collection_id: str, item_id: str) -> bool:
        """True if the item exists; :class:`OwnerMismatchError` if another node owns it."""
        try:
            stored = self.services.catalog.get_item(collection_id, item_id)
        except ItemNotFoundError:
            return False
        owner = str(stored.get("properties", {}).get(NODE_PROPERTY) or "")
        me = self.services.settings.node_id
        if owner and owner != me:
            raise OwnerMismatchError(
                f"item {collection_id}/{item_id} is owned by node {owner!r}; only it may "
                f"change it (this is node {me!r})"
            )
        return True

    def upsert(self, item: dict[str, Any]) -> None:
        self._check_owner(str(item.get("collection")), str(item.get("id")))
        self._publish(register_item(self.services, item))

    def delete(self, collection_id: str, item_id: str) -> bool:
        if not self._check_owner(collection_id, item_id):
            return False
        self._publish(retract_item(self.services, collection_id, item_id))
        return True
