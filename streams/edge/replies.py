"""Requests from outside may not answer on ``workflows.runs``.

The workflow agent advances a run on the answers that arrive on ``workflows.runs`` under
its step instances' ids (``RUN.aN.STEP``, derived from the run id so a replay requests
the same ids). A client holding the edge token that knows a running run's id could
otherwise publish a real request of a step's kind under that step's id with
``reply_topic`` ``workflows.runs`` and have its answer taken as the step's outcome. So
the edge refuses every request naming that reply topic (on ``/topics/.../events``,
``/topics/.../records`` and ``/rpc``) before anything is published; only a request on
``/rpc`` signed by a configured peer (a workflow step that peer's placement forwarded
here) may name it. docs/security.md explains why this and not unguessable step ids.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import HTTPException

from gravitas.schemas.base import Event

__all__ = ["STEP_REPLIES", "refuse_step_replies"]

STEP_REPLIES = "workflows.runs"
"""The topic the workflow agent reads step answers from."""


def refuse_step_replies(events: Sequence[Event], peer: str | None = None) -> None:
    """403 naming the first request that names ``workflows.runs`` as its reply topic,
    unless the body comes signed from configured peer ``peer``."""
    if peer is not None:
        return
    for number, event in enumerate(events, start=1):
        if getattr(event, "reply_topic", None) == STEP_REPLIES:
            rid = getattr(event, "request_id", None)
            raise HTTPException(
                403,
                f"request {number} ({type(event).__name__} {rid!r}) names reply_topic "
                f"{STEP_REPLIES!r}: only the node's workflow agent (and peers forwarding "
                "its steps, signed) may answer workflow steps; leave reply_topic out to get "
                "the answer on the request's own topic",
            )
