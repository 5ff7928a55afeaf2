"""What a run moved between nodes, against what moving the data would have moved."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gravitas.agents.modules.placement import json_bytes
from gravitas.agents.workflows.engine import Outcome
from gravitas.agents.workflows.spec import Plan


def workflow_ref(plan: Plan) -> str:
    """``name@version`` of a workflow spec."""
    return f"{plan.spec.get('name', '')}@{plan.spec.get('version', '')}"


def transfer_of(
    me: str,
    request: dict[str, Any],
    ran_on: str,
    outputs: dict[str, Any],
    bytes_in: int,
    agent_bytes: int = 0,
) -> tuple[int, int]:
    """(bytes moved, bytes moving the data would have moved) of one step instance run for
    a run on node ``me``: a step that ran elsewhere moved its request and its answer
    (JSON); moving the data instead would have fetched the input bytes other nodes hold
    (their registrations' ``file:size``; else what the step read where it ran). An agent
    step adds the bytes its agent reports moving between nodes itself (``agent_bytes``:
    a training's parameter exchange), wherever it was coordinated."""
    extra = max(0, int(agent_bytes))
    if not ran_on or ran_on == me:
        return extra, 0
    held: dict[str, int] = request.get("held") or {}
    elsewhere = sum(int(b) for n, b in held.items() if n != me)
    moved = json_bytes(request.get("inputs", {})) + json_bytes(outputs) + extra
    return moved, elsewhere or int(bytes_in)


def transfer_summary(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """The run's totals and the step instances per node."""
    per_node: dict[str, int] = {}
    moved = data = 0
    for o in outcomes:
        if o.status != "ok":
            continue
        moved += o.bytes_moved
        data += o.bytes_if_data_moved
        if o.served_by:
            per_node[o.served_by] = per_node.get(o.served_by, 0) + 1
    return {
        "bytes_moved": moved,
        "bytes_if_data_moved": data,
        "steps_per_node": dict(sorted(per_node.items())),
    }
