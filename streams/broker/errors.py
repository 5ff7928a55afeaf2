"""Errors of the local Kafka broker area (one-line subclasses of the root hierarchy)."""

from __future__ import annotations

from gravitas.schemas.errors import BrokerError


class TopicMismatchError(BrokerError):
    """A topic exists with a partition count other than the one asked for."""
