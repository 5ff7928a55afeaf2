"""The transport contract the SDK, the CLI and the HTTP edge publish and read through.

Topic names here are logical (``scenes.new``); a transport maps them to physical names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RawRecord:
    """A record as read from a topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


class Subscription(Protocol):
    """An open, positioned reader of one topic; iterate it for records."""

    def __aiter__(self) -> AsyncIterator[RawRecord]: ...


class Transport(Protocol):
    """Publish and read raw records by logical topic name."""

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Send one record (durably enough that a subscriber will see it)."""
        ...

    def subscription(
        self, topic: str, from_beginning: bool = False
    ) -> AbstractAsyncContextManager[Subscription]:
        """A reader positioned at the end (or the beginning) once entered."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
