"""docs/workflows.md's commands as a user runs them: module list/show, two templates
written out, an embedded node, and both runs with --wait on real data (the Luxembourg
DEM, ERA5); the printed outputs equal the modules run by hand."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gravitas.agents.modules import flood
from tests.agents.test_agents_workflows_run import hand

DOC = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"


@pytest.mark.slow
def test_the_docs_commands_run(tmp_path: Path) -> None:
    block = re.search(r"<!-- try -->\n```bash\n(.*?)```", DOC.read_text(), re.S)
    assert block, "docs/workflows.md has no tried bash block"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITAS_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    env["COLUMNS"] = "200"
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
    script += block.group(1)
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "flood-screen@1.0.0" in done.stdout and (tmp_path / "era5.yaml").is_file()
    results = [
        json.loads(m)
        for m in re.findall(r"^\{\n.*?^\}", done.stdout, re.S | re.M)
        if '"run_id"' in m
    ]
    assert [r["status"] for r in results] == ["succeeded", "succeeded"], done.stdout[-2000:]
    want = [
        hand(flood.run, {"rain_mm": r, "infiltration_mm": 10}, flood.MODULE)["flooded_km2"]
        for r in (40, 150)
    ]
    assert results[0]["outputs"]["flooded_km2"] == want
    assert len(results[1]["outputs"]["member_means"]) == 3
