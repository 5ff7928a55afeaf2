"""The agent contract: a processor ``event -> events`` that never talks to Kafka.

A runner (in-process or Kafka) decodes a record into a validated event, calls
:meth:`Agent.handle`, publishes what it returns, and commits the offset. Anything the
agent raises is classified by the runner's error policy (retry or dead-letter).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from gravitas.schemas.base import Event

if TYPE_CHECKING:
    from gravitas.agents.services import NodeServices


@dataclass(frozen=True)
class Emit:
    """One output of an agent: an event for a logical topic."""

    topic: str
    event: Event


EmitFn = Callable[[str, Event], Awaitable[None]]


@dataclass
class AgentContext:
    """What an agent may use while it handles one event."""

    node_id: str
    services: NodeServices
    emit: EmitFn
    """Publish an event right away (progress while the requester waits)."""
    log: logging.LoggerAdapter[logging.Logger]


class Agent(ABC):
    """Base of every agent; subclasses name their source topic and implement ``handle``."""

    name: ClassVar[str]
    """Stable agent name (used in consumer names, metrics and dead-letter records)."""
    topic: ClassVar[str]
    """The logical source topic."""

    async def start(self, services: NodeServices) -> None:  # noqa: B027 - optional hook
        """Open what the agent needs once per worker (default: nothing)."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Release what :meth:`start` opened (default: nothing)."""

    async def recover(self, services: NodeServices) -> Sequence[Emit]:
        """Answers owed from before a restart, published once after :meth:`start`
        (default: none). Their ids derive from the agent and the event key, so a second
        recovery of the same thing publishes the same ids."""
        return []

    @abstractmethod
    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        """Process one event and return the events to publish."""
