"""Workflows through a real Kafka worker (real broker): the ERA5 ensemble template equals
the steps run by hand, and a 5-step run SIGKILLed at every step boundary, then restarted,
finishes once with the outputs of an unkilled run and no step run twice."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gravitas.agents.modules import downscale, flood, stats
from gravitas.agents.workflows.shipped import template_spec
from gravitas.schemas.base import Event
from gravitas.schemas.settings import load_settings
from gravitas.schemas.workflows import StepFinished, WorkflowStatus
from gravitas.streams.broker import KafkaBroker
from gravitas.streams.node import EmbeddedNode
from gravitas.streams.workflow_client import run_workflow
from tests.agents.test_agents_workflows_run import agents, hand
from tests.fixtures.nodes import kafka_harness

pytestmark = pytest.mark.kafka


def five_steps() -> dict[str, Any]:
    """flood -> stats -> downscale -> stats -> flood, each feeding the next."""
    return {
        "name": "five",
        "version": "1.0.0",
        "steps": {
            "s1": {"module": "flood-screen@1.0.0", "inputs": {"rain_mm": 60}},
            "s2": {
                "module": "quantiles@1.0.0",
                "inputs": {
                    "values": ["${steps.s1.outputs.flooded_km2}", "${steps.s1.outputs.max_depth_m}"]
                },
            },
            "s3": {
                "module": "downscale@1.0.0",
                "inputs": {"member": "${steps.s2.outputs.count}", "seed": 3},
            },
            "s4": {
                "module": "quantiles@1.0.0",
                "inputs": {"values": ["${steps.s2.outputs.spread}", "${steps.s3.outputs.std}"]},
            },
            "s5": {
                "module": "flood-screen@1.0.0",
                "inputs": {"rain_mm": "${steps.s4.outputs.spread}"},
            },
        },
        "outputs": {
            "area": "${steps.s5.outputs.flooded_km2}",
            "sha": "${steps.s5.outputs.sha256}",
            "fine": "${steps.s3.outputs.sha256}",
        },
    }


async def test_era5_template_on_a_kafka_worker(
    tmp_path: Path, kafka_broker: KafkaBroker, unique_name: str
) -> None:
    async with kafka_harness(tmp_path, kafka_broker.bootstrap, unique_name) as h:
        status = await run_workflow(
            h.client, template_spec("era5-ensemble"), {"members": [2, 5]}, timeout=180
        )
        assert isinstance(status, WorkflowStatus) and status.status == "succeeded", status.error
        means = [
            hand(
                downscale.run,
                {"member": m, "factor": 3, "seed": 7, "variable": "t"},
                downscale.MODULE,
            )["mean"]
            for m in (2, 5)
        ]
        assert status.outputs["member_means"] == means
        want = stats.quantiles({"values": means, "q": [0.05, 0.5, 0.95]}, None)  # type: ignore[arg-type]
        assert status.outputs["quantiles"] == want["quantiles"]
        assert {p["node"] for p in status.provenance.values()} == {"w0"}


@pytest.mark.slow
async def test_sigkill_at_every_step_boundary_resumes_once(
    tmp_path: Path, kafka_broker: KafkaBroker, unique_name: str
) -> None:
    settings = load_settings(data_dir=tmp_path / "ref", http_port=0)
    async with EmbeddedNode(settings, agents=agents(), serve_http=False) as node:
        reference = await node.client().run_workflow(five_steps(), timeout=120)
    assert isinstance(reference, WorkflowStatus) and reference.status == "succeeded"
    assert (
        reference.outputs["area"]
        == hand(
            flood.run,
            {
                "rain_mm": reference.provenance[
                    next(i for i in reference.provenance if i.endswith(".s5"))
                ]["inputs"]["rain_mm"]
            },
            flood.MODULE,
        )["flooded_km2"]
    )

    async with kafka_harness(tmp_path, kafka_broker.bootstrap, unique_name) as h:
        worker = h.workers[0]
        run_id = "five-killed"
        await run_workflow(h.client, five_steps(), run_id=run_id, wait=False)
        for boundary in range(1, 5):

            def finished(evs: list[Event], n: int = boundary) -> bool:
                return len({e.step_id for e in evs if isinstance(e, StepFinished)}) >= n

            await h.collect("workflows.runs", finished, timeout=120)
            worker.kill()  # SIGKILL right after step `boundary` answered
            worker.start()
            await h.wait_ready()
        final = await h.collect(
            "workflows.status",
            lambda evs: any(
                isinstance(e, WorkflowStatus) and e.run_id == run_id and e.status != "running"
                for e in evs
            ),
            timeout=180,
        )
        await asyncio.sleep(3)  # any duplicate terminal status would have landed by now
        final = await h.collect("workflows.status", lambda evs: len(evs) >= len(final), timeout=30)
        ends = {
            str(e.event_id): e
            for e in final
            if isinstance(e, WorkflowStatus) and e.run_id == run_id and e.status != "running"
        }
        assert len(ends) == 1, ends  # the run finished once
        (end,) = ends.values()
        assert end.status == "succeeded", end.error
        assert end.outputs == reference.outputs  # identical to the unkilled run
        db = sqlite3.connect(h.data_dir / "module_steps.sqlite")
        assert db.execute("SELECT count(*) FROM steps").fetchone()[0] == 5  # each ran once
        db.close()
        assert np.isfinite(end.outputs["area"])
