"""The event envelope every message on a topic carries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from gravitas.schemas.common import UtcDatetime

NODE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Base of every event: envelope fields plus a ``type`` discriminator.

    ``event_id`` identifies one event; agents derive the ids of what they emit from it
    (:func:`derive_event_id`), so a replay after a crash emits the same ids again and
    consumers can drop duplicates.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str] = "event"
    KEY_FIELD: ClassVar[str] = "event_id"
    """The field whose value keys (partitions) the event on its topic."""

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred_at: UtcDatetime = Field(default_factory=_now)
    node_id: str = Field(default="local", pattern=NODE_ID_PATTERN)
    schema_version: int = Field(default=1, ge=1)

    def key(self) -> str:
        """The partition key of this event (the value of ``KEY_FIELD``)."""
        return str(getattr(self, self.KEY_FIELD))


def derive_event_id(parent: uuid.UUID, salt: str) -> uuid.UUID:
    """A deterministic child id: the same parent and salt always give the same id."""
    return uuid.uuid5(parent, salt)
