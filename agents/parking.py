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

import orjson

from gravitas.agents.answers import failure_answers
from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.schemas.base import Event
from gravitas.schemas.codec import decode
from gravitas.schemas.events import (
    ALL_EVENTS,
    OnboardingDone,
    OnboardingFailed,
    RequestParked,
)
from gravitas.storage.parked import Decision

__all__ = ["ParkingAgent"]


class ParkingAgent(Agent):
    """``onboard.results`` -> resumed requests, or failed answers."""

    name = "parking"
    topic = "onboard.results"

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        store = ctx.services.parked
        eid = str(event.event_id)
        if isinstance(event, RequestParked):
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
        request = decode(orjson.dumps(decision.request), ALL_EVENTS)
        if decision.kind == "resume":
            ctx.log.info("resuming %s on %s", decision.request_id, decision.topic)
            return [Emit(decision.topic, request)]
        ctx.log.info("answering parked %s as failed: %s", decision.request_id, decision.cause)
        return failure_answers(request, decision.cause, node_id=ctx.node_id, step="retrieve")
