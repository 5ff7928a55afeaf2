"""The ping agent: a liveness probe through a node's whole event path.

It answers every :class:`Ping` with a :class:`Pong`, and records the ping in the
effect ledger exactly once (replays after a crash find it there), so it doubles as the
reference for at-least-once processing with idempotent effects.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.schemas import errors
from gravitas.schemas.base import Event
from gravitas.schemas.events import Ping, Pong


class PingAgent(Agent):
    """``ops.ping`` -> ``ops.pong``."""

    name = "ping"
    topic = "ops.ping"

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        assert isinstance(event, Ping)
        if event.fail:
            _raise_drill(event.fail)
        if event.effect:
            ctx.services.ledger.record(str(event.event_id), self.name, event.request_id)
        # Per-event hot path of the benchmarks: validating a dict in pydantic-core costs
        # half of keyword construction with the random-id default (and less than the
        # unvalidated pure-Python ``model_construct``); the runner stamps the real id,
        # derived from the ping's.
        pong = Pong.model_validate(
            {
                "event_id": _STAMPED_BY_RUNNER,
                "occurred_at": datetime.now(UTC),
                "request_id": event.request_id,
                "ping_id": event.event_id,
                "payload": event.payload,
                "sent_at_ns": event.sent_at_ns,
                "served_by": ctx.node_id,
            }
        )
        return [Emit("ops.pong", pong)]


_STAMPED_BY_RUNNER = uuid.UUID(int=0)
"""Placeholder id: the runner replaces it with one derived from the ping's id."""


def _raise_drill(name: str) -> None:
    """Raise the named gravitas error class (fault drills of the dead-letter path)."""
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.GravitasError)):
        cls = RuntimeError
    raise cls(f"fault drill requested by the ping event: {name}")
