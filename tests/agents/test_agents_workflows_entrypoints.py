"""A package adds a module through the ``gravitas.modules`` entry-point group (a real
distribution's metadata on sys.path, as pip leaves it), a workflow runs it, and a
module version change shows in the provenance of the outputs."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from gravitas.agents.modules.catalog import node_catalog
from gravitas.agents.modules.entrypoints import discovered_modules
from gravitas.schemas.settings import load_settings
from gravitas.schemas.workflows import WorkflowStatus
from gravitas.streams.node import EmbeddedNode
from tests.agents.test_agents_workflows_run import agents

PKG = """
from gravitas.agents.modules.model import Module, schema


def scale(inputs, ctx):
    return {{"y": inputs["x"] * FACTOR}}


FACTOR = {factor}


def module():
    return Module(name="scaler", version="{version}", description="x times a factor",
                  author="a team", lifecycle="published", kind="python",
                  target="scaler_pkg:scale",
                  inputs=schema({{"x": {{"type": "number"}}}}, ["x"]),
                  outputs=schema({{"y": {{"type": "number"}}}}))
"""


def install(root: Path, version: str, factor: int) -> None:
    """What `pip install` of a tiny package leaves: the module and its dist-info."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "scaler_pkg.py").write_text(PKG.format(version=version, factor=factor))
    info = root / f"scaler_pkg-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: scaler-pkg\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[gravitas.modules]\nscaler = scaler_pkg:module\n")


def spec(version: str) -> dict[str, object]:
    return {
        "name": "scale",
        "version": "1.0.0",
        "steps": {"s": {"module": f"scaler@{version}", "inputs": {"x": 21}}},
        "outputs": {"y": "${steps.s.outputs.y}"},
    }


async def test_an_entry_point_module_runs_and_its_version_is_in_the_provenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(tmp_path / "site1", "1.0.0", 2)
    monkeypatch.syspath_prepend(str(tmp_path / "site1"))
    importlib.invalidate_caches()
    found = {m.ref: m for m in discovered_modules()}
    assert found["scaler@1.0.0"].provenance["package"] == "scaler-pkg==1.0.0"
    settings = load_settings(data_dir=tmp_path / "node", http_port=0)
    assert "scaler@1.0.0" in {m.ref for m in node_catalog(settings.data_dir).all()}
    async with EmbeddedNode(settings, agents=agents(), serve_http=False) as node:
        first = await node.client().run_workflow(spec("1.0.0"), timeout=60)
        assert isinstance(first, WorkflowStatus) and first.status == "succeeded", first.error
        assert first.outputs == {"y": 42}
        assert [p["module"] for p in first.provenance.values()] == ["scaler@1.0.0"]

        # the team ships 2.0.0: a run pinned to it shows the new version
        sys.path.remove(str(tmp_path / "site1"))
        sys.modules.pop("scaler_pkg", None)
        install(tmp_path / "site2", "2.0.0", 3)
        monkeypatch.syspath_prepend(str(tmp_path / "site2"))
        importlib.invalidate_caches()
        second = await node.client().run_workflow(spec("2.0.0"), timeout=60)
        assert isinstance(second, WorkflowStatus) and second.status == "succeeded", second.error
        assert second.outputs == {"y": 63}
        assert [p["module"] for p in second.provenance.values()] == ["scaler@2.0.0"]
        stale = await node.client().run_workflow(spec("1.0.0"), timeout=60)
        assert isinstance(stale, WorkflowStatus) and stale.status == "failed"
        assert "no version '1.0.0'; known: 2.0.0" in (stale.error or "")
