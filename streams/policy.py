"""One table maps error classes to what the runner does: retry, answer, or dead-letter.

The most specific class in an exception's MRO wins. Anything unknown (a bug) is
dead-lettered: a bad input must never kill a worker. Whatever the action, a request
that has a requester is answered as failed with the cause
(:func:`gravitas.agents.answers.failure_answers`), so nobody waits for a reply that
never comes.
"""

from __future__ import annotations

from enum import Enum

import urllib3

from gravitas.schemas import errors


class Action(Enum):
    """What the runner does with a failed event."""

    RETRY = "retry"
    """Transient (broker, storage, time-out): try again with backoff; when the attempts
    run out, answer as failed and dead-letter."""
    ANSWER = "answer"
    """The request cannot be satisfied (bad input, something missing): answer it as
    failed; dead-letter only an event that has nobody to answer."""
    DEADLETTER = "deadletter"
    """Undecodable input or a bug: dead-letter (and answer a request as failed)."""


ERROR_POLICY: dict[type[BaseException], Action] = {
    errors.TransportError: Action.RETRY,
    errors.StorageError: Action.RETRY,
    TimeoutError: Action.RETRY,
    ConnectionError: Action.RETRY,
    urllib3.exceptions.HTTPError: Action.RETRY,  # the S3 client's connection failures
    errors.EventDecodeError: Action.DEADLETTER,
    errors.EventValidationError: Action.DEADLETTER,
    errors.InputError: Action.ANSWER,
    errors.NotFoundError: Action.ANSWER,
    errors.GravitasError: Action.DEADLETTER,
    Exception: Action.DEADLETTER,
}


def action_for(exc: BaseException) -> Action:
    """The action for an exception: the entry of the nearest class in its MRO."""
    for cls in type(exc).__mro__:
        if cls in ERROR_POLICY:
            return ERROR_POLICY[cls]
    return Action.DEADLETTER


def is_transient(exc: BaseException) -> bool:
    """Whether retrying may help (steps re-raise these instead of failing the request)."""
    return action_for(exc) is Action.RETRY
