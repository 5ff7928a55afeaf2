"""One table classifies errors: transient ones are retried, a request that cannot be
satisfied is answered as failed, bugs are dead-lettered and answered too; datacube steps
let transient errors through to the runner instead of failing the request for good."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.agents.datacube.plan import StepFailed, step
from gravitas.schemas.base import Event
from gravitas.schemas.errors import EventDecodeError, InputError, StorageError
from gravitas.schemas.events import PixelSearch, Predicate, Rejected, SearchResult, TimeRange
from gravitas.schemas.settings import load_settings
from gravitas.storage.objects.errors import ObjectNotFoundError, ObjectStoreError
from gravitas.streams.node import EmbeddedNode
from gravitas.streams.policy import Action, action_for


def test_the_table() -> None:
    assert action_for(StorageError("s3 down")) is Action.RETRY
    assert action_for(ObjectStoreError("bucket unreachable")) is Action.RETRY
    assert action_for(TimeoutError()) is Action.RETRY
    assert action_for(ConnectionResetError()) is Action.RETRY
    assert action_for(ObjectNotFoundError("gone")) is Action.ANSWER
    assert action_for(InputError("bad bbox")) is Action.ANSWER
    assert action_for(EventDecodeError("not json")) is Action.DEADLETTER
    assert action_for(ZeroDivisionError()) is Action.DEADLETTER


def test_steps_let_transient_errors_through() -> None:
    with pytest.raises(StorageError), step("retrieve"):
        raise StorageError("block store unreachable")
    with pytest.raises(StepFailed) as failed, step("patch"):
        raise ValueError("patch larger than the window")
    assert failed.value.step == "patch" and isinstance(failed.value.error, ValueError)


class _Failing(Agent):
    """Raises the error class named by a search's layer, ``attempts`` counts tries."""

    name = "failing"
    topic = "requests.discovery"

    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        assert isinstance(event, PixelSearch)
        self.attempts[event.request_id] = self.attempts.get(event.request_id, 0) + 1
        errors: dict[str, Exception] = {
            "storage": StorageError("the block store did not answer"),
            "input": InputError("bbox -200 is outside -180..180; fix the bbox"),
            "bug": ZeroDivisionError("division by zero"),
        }
        raise errors[event.layer]


async def test_every_failure_is_answered_and_only_bugs_and_exhausted_retries_dead_lettered(
    tmp_path: Path,
) -> None:
    settings = load_settings(data_dir=tmp_path / "n", broker="memory://", retry_attempts=3)
    agent = _Failing()
    async with EmbeddedNode(settings, agents=[agent], serve_http=False) as node:
        client = node.client()
        t = datetime(2020, 1, 1, tzinfo=UTC)
        replies: dict[str, SearchResult] = {}
        for kind in ("storage", "input", "bug"):
            req = PixelSearch(
                request_id=f"{kind}-{uuid.uuid4().hex[:6]}", layer=kind,
                predicate=Predicate(op=">", value=0), bbox=(0, 0, 1, 1),
                time=TimeRange(start=t, end=t),
            )  # fmt: skip
            reply = await client.request(req, timeout=30)
            assert isinstance(reply, SearchResult)
            replies[kind] = reply
        await node.runner.drain()
        dead: list[Rejected] = []

        async def read() -> None:
            async for ev in client.subscribe("deadletter", from_beginning=True):
                assert isinstance(ev, Rejected)
                dead.append(ev)

        task = asyncio.create_task(read())
        await asyncio.sleep(0.3)
        task.cancel()
    assert all(r.status == "failed" for r in replies.values())
    assert replies["storage"].error == "StorageError: the block store did not answer"
    assert replies["input"].error == "InputError: bbox -200 is outside -180..180; fix the bbox"
    assert replies["bug"].error == "ZeroDivisionError: division by zero"
    assert agent.attempts[replies["storage"].request_id] == 3  # retried, then answered
    assert agent.attempts[replies["input"].request_id] == 1
    assert sorted((d.error_class, d.attempts) for d in dead) == [
        ("StorageError", 3),
        ("ZeroDivisionError", 1),
    ]  # the bad input was answered; its requester knows, nothing to dead-letter
