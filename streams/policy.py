"""One table maps error classes to what the runner does: retry, or dead-letter.

The most specific class in an exception's MRO wins. Anything unknown (a bug) is
dead-lettered too: a bad input must never kill a worker.
"""

from __future__ import annotations

from enum import Enum

import urllib3

from gravitas.schemas import errors


class Action(Enum):
    """What the runner does with a failed event."""

    RETRY = "retry"
    """Try again with backoff (transient: broker, storage), then dead-letter."""
    DEADLETTER = "deadletter"
    """Publish a Rejected record and move on (bad input, bug)."""


ERROR_POLICY: dict[type[BaseException], Action] = {
    errors.TransportError: Action.RETRY,
    errors.StorageError: Action.RETRY,
    TimeoutError: Action.RETRY,
    ConnectionError: Action.RETRY,
    urllib3.exceptions.HTTPError: Action.RETRY,  # the S3 client's connection failures
    errors.EventDecodeError: Action.DEADLETTER,
    errors.EventValidationError: Action.DEADLETTER,
    errors.InputError: Action.DEADLETTER,
    errors.NotFoundError: Action.DEADLETTER,
    errors.GravitasError: Action.DEADLETTER,
    Exception: Action.DEADLETTER,
}


def action_for(exc: BaseException) -> Action:
    """The action for an exception: the entry of the nearest class in its MRO."""
    for cls in type(exc).__mro__:
        if cls in ERROR_POLICY:
            return ERROR_POLICY[cls]
    return Action.DEADLETTER
