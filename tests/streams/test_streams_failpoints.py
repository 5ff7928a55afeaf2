"""The fault drills' failpoint: a handler holds after publishing the named progress
record (so a test's SIGKILL lands exactly at that step); a later stage, a fraction not
yet reached or no failpoint leave it running; a malformed one is refused at start."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.agents.services import NodeServices
from gravitas.schemas.base import Event
from gravitas.schemas.codec import encode
from gravitas.schemas.errors import ConfigError
from gravitas.schemas.events import Ping, Pong, Progress
from gravitas.schemas.settings import load_settings
from gravitas.streams.failpoints import Failpoint
from gravitas.streams.metrics import NodeMetrics
from gravitas.streams.processing import Outbound, Processor, Record
from gravitas.streams.topology import Topology


class StepsAgent(Agent):
    """Two progress records (``read`` at 0.5, ``write`` at 0.9), then the answer."""

    name = "steps"
    topic = "ops.ping"

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        assert isinstance(event, Ping)
        for stage, fraction in (("read", 0.5), ("write", 0.9)):
            await ctx.emit("progress", Progress(request_id=event.request_id, stage=stage,
                                                fraction=fraction))  # fmt: skip
        return [Emit("ops.pong", Pong(request_id=event.request_id, ping_id=event.event_id))]


async def _run(tmp_path: Path, failpoint: Failpoint | None) -> tuple[list[str], bool]:
    """The progress stages published and whether the handler finished."""
    services = NodeServices(load_settings(data_dir=tmp_path / "node"))
    published: list[Outbound] = []

    async def publish(out: Outbound) -> None:
        published.append(out)

    processor = Processor(StepsAgent(), Topology(), services, NodeMetrics(), publish,
                          node_id="n1", failpoint=failpoint)  # fmt: skip
    record = Record("ops.ping", 0, 0, b"r1", encode(Ping(request_id="r1")))
    task = asyncio.create_task(processor.process(record))
    try:
        done, _ = await asyncio.wait([task], timeout=2.0)
        stages = [Progress.model_validate_json(o.value).stage for o in published]
        if task in done:
            assert [o.topic for o in task.result()] == ["ops.pong"]
        return stages, task in done
    finally:
        task.cancel()
        services.close()


async def test_the_handler_holds_after_the_named_progress_record(tmp_path: Path) -> None:
    assert await _run(tmp_path, Failpoint.parse("progress:read")) == (["read"], False)
    assert await _run(tmp_path, Failpoint.parse("progress:write@0.9")) == (["read", "write"], False)


async def test_no_hold_before_the_fraction_or_without_a_failpoint(tmp_path: Path) -> None:
    assert await _run(tmp_path, Failpoint.parse("progress:write@1.0")) == (["read", "write"], True)
    assert await _run(tmp_path, Failpoint.parse("progress:other")) == (["read", "write"], True)
    assert await _run(tmp_path, None) == (["read", "write"], True)


@pytest.mark.parametrize("bad", ["write", "progress:", "progress:w@1.5", "progress:a b", "x:y"])
def test_a_malformed_failpoint_is_refused_naming_it(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="failpoint"):
        load_settings(data_dir=tmp_path, failpoint=bad)
    with pytest.raises(ValueError, match="is not progress"):
        Failpoint.parse(bad)
