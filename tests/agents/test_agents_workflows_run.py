"""Workflows run through the node's agents: templates on real data (ERA5 ensemble, the
Luxembourg DEM, Stage IV) equal the same steps run by hand; branching, for_each and
repeat both ways; failing steps, retry, cancel; deprecated modules warn."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gravitas.agents.discovery import DiscoveryAgent
from gravitas.agents.ingest import IngestAgent
from gravitas.agents.modules import downscale, flood
from gravitas.agents.modules.agent import ModuleAgent, ModuleRegistryAgent
from gravitas.agents.modules.context import ModuleContext
from gravitas.agents.overviews import OverviewAgent
from gravitas.agents.workflows.agent import WorkflowAgent, WorkflowIntakeAgent
from gravitas.agents.workflows.shipped import template_spec
from gravitas.schemas.settings import load_settings
from gravitas.schemas.workflows import WorkflowStatus
from gravitas.storage.pixels.search import search_pixels
from gravitas.streams.node import EmbeddedNode
from tests.agents.test_agents_pixels import FLORENCE, WINDOW, stageiv_event


def agents() -> list[Any]:
    return [
        IngestAgent(),
        OverviewAgent(),
        DiscoveryAgent(),
        ModuleRegistryAgent(),
        ModuleAgent(),
        WorkflowIntakeAgent(),
        WorkflowAgent(),
    ]


async def run(
    node: EmbeddedNode, spec: dict[str, Any], params: dict[str, Any] | None = None, **kw: Any
) -> WorkflowStatus:
    status = await node.client().run_workflow(spec, params, timeout=240, **kw)
    assert isinstance(status, WorkflowStatus)
    return status


def hand(fn: Any, inputs: dict[str, Any], module: Any) -> dict[str, Any]:
    props = module.inputs["properties"]
    full = {k: p["default"] for k, p in props.items() if "default" in p}
    full.update(inputs)
    return dict(fn(full, ModuleContext("by-hand", "test")))


async def test_python_templates_equal_the_steps_run_by_hand(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "node", http_port=0)
    async with EmbeddedNode(settings, agents=agents(), serve_http=False) as node:
        ens = await run(node, template_spec("era5-ensemble"), {"members": [0, 3, 9]})
        assert ens.status == "succeeded", ens.error
        by_hand = [
            hand(
                downscale.run,
                {"member": m, "factor": 3, "seed": 7, "variable": "t"},
                downscale.MODULE,
            )
            for m in (0, 3, 9)
        ]
        assert ens.outputs["member_means"] == [h["mean"] for h in by_hand]
        q = np.quantile([h["mean"] for h in by_hand], [0.05, 0.5, 0.95])
        assert ens.outputs["quantiles"] == pytest.approx({"q05": q[0], "q50": q[1], "q95": q[2]})
        # the fine fields the steps stored are the bytes of the hand run
        store = node.services.object_store
        for iid, prov in ens.provenance.items():
            if prov["module"] == "downscale@1.0.0":
                assert prov["node"] == settings.node_id
                assert prov["inputs"]["seed"] == 7
                data = store.get_bytes(f"workflows/{iid}.npy")
                import hashlib

                assert hashlib.sha256(data).hexdigest() in {h["sha256"] for h in by_hand}

        fl = await run(node, template_spec("flood-screening"), {"rain_mm": [40, 150]})
        assert fl.status == "succeeded", fl.error
        want = [
            hand(flood.run, {"rain_mm": r, "infiltration_mm": 10}, flood.MODULE)["flooded_km2"]
            for r in (40, 150)
        ]
        assert fl.outputs["flooded_km2"] == want and want[0] < want[1]


def loop_spec() -> dict[str, Any]:
    """quantiles repeated: its count grows with the iteration until it reaches 3."""
    return {
        "name": "loops",
        "version": "1.0.0",
        "params": {
            "xs": {"type": "array", "default": [1.0, 2.0, 4.0]},
            "gate": {"type": "number", "default": 1},
        },
        "steps": {
            "each": {
                "module": "quantiles@1.0.0",
                "for_each": "${params.xs}",
                "as": "x",
                "inputs": {"values": ["${x}"], "q": [0.5]},
            },
            "all": {
                "module": "quantiles@1.0.0",
                "inputs": {"values": "${steps.each.outputs.spread}", "q": [0.5]},
            },
            "big": {
                "module": "quantiles@1.0.0",
                "when": {"ref": "${steps.all.outputs.count}", "op": ">=", "value": 2},
                "inputs": {"values": [1.0], "q": [0.5]},
            },
            "small": {
                "module": "quantiles@1.0.0",
                "when": {"ref": "${steps.all.outputs.count}", "op": "<", "value": 2},
                "inputs": {"values": [2.0], "q": [0.5]},
            },
            "grow": {
                "module": "quantiles@1.0.0",
                "repeat": {
                    "until": {"output": "spread", "op": ">=", "value": 100},
                    "max": 4,
                },
                "inputs": {"values": [0, "${iteration}"], "q": [0.5]},
            },
        },
        "outputs": {
            "n": "${steps.all.outputs.count}",
            "grown": "${steps.grow.outputs.spread}",
            "big": "${steps.big.outputs.count}",
        },
    }


async def test_branching_for_each_and_repeat(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "node", http_port=0)
    async with EmbeddedNode(settings, agents=agents(), serve_http=False) as node:
        many = await run(node, loop_spec(), {"xs": [1.0, 2.0, 4.0]})
        assert many.status == "succeeded", many.error
        assert many.outputs["n"] == 3
        assert many.steps["big"] == "ok" and many.steps["small"] == "skipped"
        assert many.outputs["grown"] == 3.0  # until never held: stopped at its bound (4)
        assert len([i for i in many.provenance if ".grow.r" in i]) == 4

        single = await run(node, loop_spec(), {"xs": [5.0]})
        assert single.status == "succeeded"
        assert single.outputs["n"] == 1 and single.steps["small"] == "ok"
        assert single.steps["big"] == "skipped" and single.outputs["big"] is None

        empty = await run(node, loop_spec(), {"xs": []})
        assert empty.status == "failed"  # quantiles of no values fails its step, naming it
        assert empty.failed_step == "all" and "produced no values" in (empty.error or "")
        assert empty.steps["each"] == "ok"

        spec = loop_spec()
        spec["steps"]["grow"]["repeat"]["until"]["value"] = 2
        early = await run(node, spec)
        assert early.outputs["grown"] == 2.0  # until held at iteration 2
        assert len([i for i in early.provenance if ".grow.r" in i]) == 3


async def test_failing_step_then_retry_and_bad_params(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "node", http_port=0)
    async with EmbeddedNode(settings, agents=agents(), serve_http=False) as node:
        spec = copy.deepcopy(template_spec("era5-ensemble"))
        bad = await run(node, spec, {"members": [0, 12]})
        assert bad.status == "failed" and bad.failed_step == "downscale"
        assert "member" in (bad.error or "") and "12" in (bad.error or "")
        refused = await run(node, spec, {"nope": 1})
        assert refused.status == "failed" and "unknown parameter(s) ['nope']" in (
            refused.error or ""
        )
        broken = copy.deepcopy(spec)
        broken["steps"]["spread"]["inputs"]["values"] = "${steps.downscale.outputs.nothing}"
        refused = await run(node, broken)
        assert "steps.spread.inputs.values" in (refused.error or "")
        assert refused.steps == {}  # nothing ran
        # retry from the failed step of a run (same run id)
        ok = await run(node, spec, {"members": [1, 2]}, run_id="retry-me")
        assert ok.status == "succeeded"
        again = await run(
            node, spec, {"members": [1, 2]}, run_id="retry-me", retry_from="spread", attempt=1
        )
        assert again.status == "succeeded" and again.outputs == ok.outputs
        assert any(".a1.spread" in i for i in again.provenance)


async def test_stageiv_template_branches_both_ways_against_the_agents(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "node", http_port=0)
    async with EmbeddedNode(settings, agents=agents(), serve_http=False) as node:
        await node.client().publish(stageiv_event())
        await node.runner.drain()
        spec = template_spec("stageiv-exceedance")
        taken = await run(node, spec, {"threshold_mm": 50})
        assert taken.status == "succeeded", taken.error
        s = node.services
        hits = search_pixels(
            s.block_store, s.layers, "stageiv", ">", 50.0, FLORENCE, WINDOW.start, WINDOW.end
        )
        assert taken.outputs["exceedances"] == hits.total > 100
        assert taken.steps["frequency"] == "ok" and len(taken.outputs["frequency"]) == 23
        dry = await run(node, spec, {"threshold_mm": 5000})
        assert dry.status == "succeeded" and dry.outputs["exceedances"] == 0
        assert dry.steps["frequency"] == "skipped" and dry.outputs["frequency"] is None


async def test_cancel_stops_a_run_before_its_next_step(tmp_path: Path) -> None:
    from gravitas.streams.workflow_client import cancel_workflow, run_status

    settings = load_settings(data_dir=tmp_path / "node", http_port=0)
    async with EmbeddedNode(settings, agents=agents(), serve_http=False) as node:
        client = node.client()
        spec = loop_spec()
        spec["steps"]["grow"]["repeat"]["max"] = 50
        run_id = await client.run_workflow(spec, wait=False, run_id="to-cancel")
        await cancel_workflow(client, "to-cancel")  # same key: ordered after the run
        await node.runner.drain()
        status = await run_status(client, str(run_id), timeout=3)
        assert status.status == "cancelled"
        assert len([i for i in status.provenance if ".grow.r" in i]) < 50
