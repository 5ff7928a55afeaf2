"""Run an agent-module step (methane, datacube) on the node its placement chose.

The module agent calls :func:`run_agent_on_peer` for a ``StepRequested`` of an agent
module placed on another node: the step becomes the agent's own request (the same
adapter as a local step: the step id is its ``request_id``) and is sent, signed, to the
peer's edge (``/rpc/<agent topic>``; the peer's ``api_url`` from the settings). The
peer's agent handles it on its own topics (the request names ``workflows.runs`` as its
reply topic, which the edge admits only from a configured peer's signature), and only
its answer comes back. The answer is returned as a ``StepFinished`` naming the node that
ran it (the agent's outputs, as the local step's), which the module agent records and
answers again on a replay. The forwarded request's event id is derived from the step
request's, so a forward repeated after a crash is the same request to the peer.
"""

from __future__ import annotations

import uuid

from gravitas.agents.services import NodeServices
from gravitas.agents.workflows.adapters import (
    ANSWERED_BY,
    agent_request,
    answer_outputs,
    answers_module,
)
from gravitas.schemas.errors import GravitasError, TransportError
from gravitas.schemas.workflows import StepFinished, StepRequested

FORWARD_TIMEOUT_S = 1800.0


def forwarded_id(event: StepRequested) -> uuid.UUID:
    """The event id of the agent request forwarded for ``event`` (same on a replay)."""
    return uuid.uuid5(event.event_id, "gravitas:agent-step-forward")


def _failed(event: StepRequested, me: str, error: str) -> StepFinished:
    return StepFinished(
        run_id=event.run_id,
        step_id=event.step_id,
        module=event.module,
        status="failed",
        error=f"node {event.node}: {error}"[:2000],
        served_by=me,
    )


def run_agent_on_peer(services: NodeServices, event: StepRequested) -> StepFinished:
    """Run the agent step ``event`` on ``event.node`` (blocking); its answer as a
    ``StepFinished``. A refusal (the peer's, or inputs the adapter refuses) fails the
    step; an unreachable peer raises :class:`TransportError` (retried)."""
    from gravitas.agents.routing import forward

    me = services.settings.node_id
    try:
        topic, request = agent_request(event.module, event.step_id, dict(event.inputs))
    except (ValueError, KeyError, TypeError) as exc:
        return _failed(event, me, f"inputs refused: {exc}")
    request = request.model_copy(
        update={"event_id": forwarded_id(event), "occurred_at": event.occurred_at}
    )
    try:
        reply = forward(services, event.node, topic, request, list(ANSWERED_BY), FORWARD_TIMEOUT_S)
    except TransportError:
        raise  # transient: retried by the runner's policy
    except GravitasError as exc:
        return _failed(event, me, str(exc))
    if getattr(reply, "request_id", None) != event.step_id or not answers_module(
        reply, event.module
    ):
        return _failed(event, me, f"answered {type(reply).__name__}, not step {event.step_id}")
    status, outputs, error, served_by, _ = answer_outputs(reply)
    if served_by != event.node:
        return _failed(event, me, f"the answer names node {served_by!r}, not {event.node!r}")
    return StepFinished(
        run_id=event.run_id,
        step_id=event.step_id,
        module=event.module,
        status="ok" if status == "ok" else "failed",
        outputs=outputs if status == "ok" else {},
        error=error,
        served_by=event.node,
        bytes_in=int(getattr(reply, "bytes_in", 0) or 0),
    )
