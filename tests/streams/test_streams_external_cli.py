"""An External Reference stays one after searches, through the user's own commands on a
running node process: ``gravitas register FILE --mode external --collection C``, then
``gravitas search`` twice. The item keeps its mode, stays not onboarded at version 1,
its href is the original file, and nothing is copied into the object store."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gravitas.storage.sampledata import fetch
from tests.fixtures.cli_node import cli_node, run_cli


@pytest.fixture
def node_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with cli_node(tmp_path, "ext-node") as env:
        yield env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(env, *args, timeout=180)


def _item(env: dict[str, str], collection: str, item_id: str) -> dict[str, Any]:
    edge = json.loads((Path(env["GRAVITAS_DATA_DIR"]) / "node.json").read_text())["edge_url"]
    resp = httpx.get(f"{edge}/stac/search", params={"collections": collection, "ids": item_id})
    resp.raise_for_status()
    (item,) = resp.json()["features"]
    return dict(item)


def _objects(env: dict[str, str]) -> list[Path]:
    root = Path(env["GRAVITAS_DATA_DIR"]) / "objects"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_an_external_reference_stays_external_after_searches(node_env: dict[str, str]) -> None:
    band = sorted(fetch("landsat7_series").glob("LE7*/*_b3.tif"))[0]
    reg = _run(
        node_env, "register", str(band), "--mode", "external", "--collection", "ext",
        "--scene-id", "ext-b3", "--layer", "extb3",
    )  # fmt: skip
    assert reg.returncode == 0, reg.stderr
    assert "mode external, onboarded False" in reg.stdout
    item = _item(node_env, "ext", "ext-b3")
    w, s, e, n = item["bbox"]
    t0 = datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))
    window = f"{t0.date()}/{(t0 + timedelta(days=1)).date()}"
    outputs = []
    for _ in range(2):
        found = _run(
            node_env, "search", "extb3", "> 0", "--bbox", f"{w},{s},{e},{n}", "--time", window
        )
        assert found.returncode == 0, found.stderr
        assert re.search(r"blocks read [1-9]", found.stdout), found.stdout  # read from the file
        outputs.append(found.stdout)
    assert outputs[0] == outputs[1]  # the second search is served the same
    after = _item(node_env, "ext", "ext-b3")
    props = after["properties"]
    assert props["gravitas:mode"] == "external"
    assert props["gravitas:onboarded"] is False
    assert props["gravitas:version"] == 1  # a read never re-registers the item
    assert [a["href"] for a in after["assets"].values() if "data" in a.get("roles", [])] == [
        str(band)
    ]
    assert _objects(node_env) == []  # nothing copied into the object store
