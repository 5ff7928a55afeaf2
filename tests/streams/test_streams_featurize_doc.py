"""docs/featurize.md's worked example as a user runs it: `gravitas ingest` of the real
Stage IV file, then `gravitas features ... --json`; the numbers equal numpy on the
stored grid and the extremes point at their values."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gravitas.schemas.settings import load_settings
from gravitas.storage.blocks import open_block_store
from gravitas.storage.pixels import LayerRegistry
from gravitas.storage.pixels.read import read_layer
from gravitas.storage.sampledata import cache_root, fetch
from gravitas.streams.cli.main import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "featurize.md"


def _commands(text: str) -> list[list[str]]:
    block = re.search(r"<!-- try -->\n```bash\n(.*?)```", text, re.S)
    assert block, "docs/featurize.md has no bash block"
    lines = block.group(1).replace("\\\n", " ").splitlines()
    return [
        [w.replace("$DATA", str(cache_root())) for w in shlex.split(line)[1:]]
        for line in lines
        if line.startswith("gravitas ")
    ]


@pytest.mark.slow
def test_docs_featurize_example_runs(tmp_path: Path) -> None:
    path = fetch("stageiv_nc")
    node = tmp_path / "node"
    runner = CliRunner()
    ingest, features = _commands(DOC.read_text())
    assert ingest[0] == "ingest" and Path(ingest[1]) == path
    res = runner.invoke(app, [*ingest, "--data", str(node)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*features, "--data", str(node)])
    assert res.exit_code == 0, res.output
    answer = json.loads(res.output[res.output.index("{") :])
    assert answer["status"] == "ok"
    store = open_block_store(f"rocksdb://{(node / 'blocks').resolve()}")
    registry = LayerRegistry(node / "layers.sqlite")
    settings = load_settings(data_dir=node)
    assert settings.data_dir == node
    bbox = tuple(float(v) for v in features[features.index("--bbox") + 1].split(","))
    t0, t1 = features[features.index("--time") + 1].split("/")
    span = [int(np.datetime64(t, "s").astype(np.int64)) for t in (t0, t1)]
    arr = read_layer(store, registry, "stageiv", bbox, *span)  # type: ignore[arg-type]
    v = arr.values.astype(np.float64)
    got = answer["values"]["all"]
    assert got["mean"] == pytest.approx(np.nanmean(v), rel=1e-9)
    assert got["max"] == pytest.approx(np.nanmax(v))
    assert got["q0.99"] == pytest.approx(np.nanquantile(v, 0.99))
    assert len(answer["extremes"]) == 3
    assert [e["value"] for e in answer["extremes"]] == pytest.approx(
        np.sort(v[np.isfinite(v)])[::-1][:3]
    )
