"""The parking agent: resumes requests parked on onboarding, or answers them as failed.

A request that needs items not yet onboarded is not waited for in its handler: the
requesting agent emits one ``OnboardRequested`` per item and a ``RequestParked`` and
moves on to its next event. This agent reads ``onboard.results`` (one partition, so it
is the one writer of :class:`~gravitas.storage.parked.ParkedRequests`): when every item
of a parked request is onboarded for it, the request is published again on its topic
and its agent answers it; when one fails, the request is answered as failed naming the
item and the cause.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson

from gravitas.agents.answers import failure_answers
from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.agents.registration import SCENE_ID
from gravitas.agents.services import NodeServices
from gravitas.schemas.base import Event
from gravitas.schemas.codec import decode
from gravitas.schemas.errors import InputError
from gravitas.schemas.events import (
    DatacubeRequested,
    OnboardingDone,
    OnboardingFailed,
    OnboardRequested,
    ParkedItem,
    PixelSearch,
    Progress,
    RequestParked,
)
from gravitas.storage.catalog.errors import ItemNotFoundError
from gravitas.storage.parked import Decision

__all__ = ["ParkingAgent", "parked_on", "parking"]

PARKED_ON = "parked on"
"""Ledger subject: the items a request event parked on (its first handling's decision)."""


def parked_on(
    services: NodeServices, agent: str, event_id: str, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The items request event ``event_id`` parks on, settled per event.

    A request that parked is answered by its resumption (published again under another
    event id). A replay of the parked request itself must not run it a second time once
    its items are onboarded (a second datacube, a newer item version): it parks again on
    the same items, so its parking events repeat with the same ids and change nothing
    (the parking agent and onboarding see them as done). Only a request that parks is
    written to the ledger."""
    if items:
        keys = sorted({(str(i["collection"]), str(i["id"])) for i in items})
        mine = orjson.dumps(keys).decode()
        decided = services.ledger.settle(event_id, agent, PARKED_ON, mine)
        if decided == mine:
            return items
    else:
        settled = services.ledger.settled(event_id, agent, PARKED_ON)
        if settled is None:
            return []
        decided = settled
    out: list[dict[str, Any]] = []
    for collection, item_id in orjson.loads(decided):
        try:
            out.append(services.catalog.get_item(collection, item_id))
        except ItemNotFoundError:  # retracted meanwhile: its onboarding answers so
            out.append({"collection": collection, "id": item_id, "properties": {}})
    return out


def parking(
    ctx: AgentContext, request: Event, request_id: str, topic: str, items: list[dict[str, Any]]
) -> list[Emit]:
    """What a request that needs ``items`` onboarded emits instead of waiting: one
    ``OnboardRequested`` per item, a ``Progress`` and a ``RequestParked``. The parking
    agent publishes the request again on ``topic`` once every item is onboarded for it
    (its handler then finds nothing pending), or answers it as failed."""
    keys = sorted({(str(i["collection"]), str(i["id"])): i for i in items}.items())
    out = [
        Emit(
            "onboard.requests",
            OnboardRequested(
                scene_id=str(item["properties"].get(SCENE_ID, item["id"])),
                collection=collection,
                item_id=item_id,
                requested_by=request_id,
            ),
        )
        for (collection, item_id), item in keys
    ]
    out.append(
        Emit(
            "progress",
            Progress(
                request_id=request_id,
                stage="onboarding",
                fraction=0.0,
                message=f"onboarding {len(keys)} item(s); the request is parked until then",
            ),
        )
    )
    out.append(
        Emit(
            "onboard.results",
            RequestParked(
                request_id=request_id,
                topic=topic,
                request=request.model_dump(mode="json"),
                waiting=[ParkedItem(collection=c, item_id=i) for (c, i), _ in keys],
            ),
        )
    )
    ctx.log.info("parked %s on %d item(s) to onboard", request_id, len(keys))
    return out


RESUMABLE: dict[str, tuple[type[Event], ...]] = {
    "requests.discovery": (PixelSearch,),
    "requests.datacube": (DatacubeRequested,),
}
"""The topics a parked request may be published again on, and the requests they take."""


def _check_parked(event: RequestParked) -> None:
    """Refuse a parked record that could not be resumed as the request it names."""
    types = RESUMABLE.get(event.topic)
    if types is None:
        raise InputError(
            f"a parked request cannot be resumed on topic {event.topic!r}; "
            f"it must be one of {sorted(RESUMABLE)}"
        )
    request = decode(orjson.dumps(event.request), types)  # EventValidationError names it
    if getattr(request, "request_id", None) != event.request_id:
        raise InputError(
            f"parked request_id {event.request_id!r} differs from the request's "
            f"{getattr(request, 'request_id', None)!r}"
        )


class ParkingAgent(Agent):
    """``onboard.results`` -> resumed requests, or failed answers."""

    name = "parking"
    topic = "onboard.results"

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        store = ctx.services.parked
        eid = str(event.event_id)
        if isinstance(event, RequestParked):
            _check_parked(event)  # before anything is stored
            items = [(w.collection, w.item_id) for w in event.waiting]
            decided = await asyncio.to_thread(
                store.park, eid, event.request_id, event.topic, event.request, items
            )
        elif isinstance(event, OnboardingDone | OnboardingFailed):
            ok = isinstance(event, OnboardingDone)
            cause = "" if isinstance(event, OnboardingDone) else event.cause
            decided = await asyncio.to_thread(
                store.outcome, eid, event.requested_by, (event.collection, event.item_id), ok,
                cause,
            )  # fmt: skip
        else:
            return []
        out: list[Emit] = []
        for decision in decided:
            out.extend(self._act(decision, ctx))
        return out

    def _act(self, decision: Decision, ctx: AgentContext) -> list[Emit]:
        request = decode(orjson.dumps(decision.request), RESUMABLE[decision.topic])
        if decision.kind == "resume":
            ctx.log.info("resuming %s on %s", decision.request_id, decision.topic)
            return [Emit(decision.topic, request)]
        ctx.log.info("answering parked %s as failed: %s", decision.request_id, decision.cause)
        return failure_answers(request, decision.cause, node_id=ctx.node_id, step="retrieve")
