"""SDK side of workflows: start a run, follow its status, cancel it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from gravitas.schemas.errors import RequestError
from gravitas.schemas.workflows import WorkflowCancelRequested, WorkflowRunRequested, WorkflowStatus

if TYPE_CHECKING:
    from gravitas.streams.client import Client

TERMINAL = ("succeeded", "failed", "cancelled")


def new_run_id(name: str) -> str:
    """A fresh run id: ``<workflow>-<12 hex>``."""
    return f"{name}-{uuid.uuid4().hex[:12]}"


async def statuses(client: Client, run_id: str) -> AsyncIterator[WorkflowStatus]:
    """Every status of a run from the beginning of ``workflows.status``."""
    async for event in client.subscribe("workflows.status", from_beginning=True):
        if isinstance(event, WorkflowStatus) and event.run_id == run_id:
            yield event


async def run_workflow(
    client: Client,
    spec: dict[str, Any],
    params: dict[str, Any] | None = None,
    *,
    run_id: str | None = None,
    wait: bool = True,
    timeout: float = 600.0,
    retry_from: str | None = None,
    attempt: int = 0,
    on_status: Callable[[WorkflowStatus], None] | None = None,
) -> WorkflowStatus | str:
    """Start a run (or retry one from a step); with ``wait`` return its final status."""
    run_id = run_id or new_run_id(str(spec.get("name", "run")))
    request = WorkflowRunRequested(
        run_id=run_id, spec=spec, params=params or {}, retry_from=retry_from, attempt=attempt
    )
    if not wait:
        await client.publish(request, "workflows.requests")
        return run_id

    async def follow() -> WorkflowStatus:
        async for status in statuses(client, run_id):
            if status.attempt < attempt:  # an earlier attempt's status
                continue
            if on_status is not None:
                on_status(status)
            if status.status in TERMINAL:
                return status
        raise RequestError(f"the status stream of run {run_id} ended")

    task = asyncio.create_task(follow())
    await asyncio.sleep(0)
    await client.publish(request, "workflows.requests")
    try:
        return await asyncio.wait_for(task, timeout)
    except TimeoutError:
        raise RequestError(
            f"run {run_id} did not finish within {timeout:.0f} s; "
            f"see `gravitas workflow status {run_id}`"
        ) from None


async def run_status(client: Client, run_id: str, timeout: float = 5.0) -> WorkflowStatus:
    """The latest status of a run (reads ``workflows.status`` from the beginning)."""
    last: WorkflowStatus | None = None

    async def scan() -> None:
        nonlocal last
        async for status in statuses(client, run_id):
            last = status

    with contextlib.suppress(TimeoutError):  # the stream never ends: read what is there
        await asyncio.wait_for(scan(), timeout)
    if last is None:
        raise RequestError(
            f"no run {run_id!r} on this node; start one with `gravitas workflow run SPEC`"
        )
    return last


async def cancel_workflow(client: Client, run_id: str) -> None:
    """Ask the node to cancel a run."""
    await client.publish(WorkflowCancelRequested(run_id=run_id), "workflows.requests")
