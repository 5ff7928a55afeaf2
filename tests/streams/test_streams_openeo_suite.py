"""openEO's official compliance suite (openeo-test-suite 0.2.2, its own venv) against a
live node with the real Sentinel-2 B04/B08 sample, through scripts/openeo-test-suite.

The suite's collection-metadata part always runs. The general compliance tests and the
process tests need the openEO OpenAPI document and the process test files, which are git
submodules of the suite and not in its wheel: they run when OPENEO_API_DIR /
OPENEO_PROCESSES_DIR name checkouts of Open-EO/openeo-api / Open-EO/openeo-processes.
The venv is created on first run through pip (cached under ~/.cache/gravitas)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_openeo_test_suite_collections_part() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITAS_")}
    env["PYTHON"] = sys.executable
    env["COLUMNS"] = "4000"
    env["SUITE_TAIL"] = "400"
    proc = subprocess.run(
        [str(ROOT / "scripts" / "openeo-test-suite"), "-k", "not longrunning", "-rfE", "-vv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["tests"] > 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    if not (env.get("OPENEO_API_DIR") or env.get("OPENEO_PROCESSES_DIR")):
        # collection metadata only. Offline, the suite's STAC validation cannot fetch the
        # STAC JSON schemas (schemas.stacspec.org): those failures, and only those, are
        # allowed; every other check of the node's collections passes.
        failed = [ln for ln in proc.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
        assert len(failed) == summary["failed"], proc.stdout[-5000:]
        assert all("schemas.stacspec.org" in ln for ln in failed), failed
        assert summary["passed"] >= 1
