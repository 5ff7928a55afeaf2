"""gravitas ingest / layers / search / quicklook on real Stage IV precipitation."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from gravitas.storage.sampledata import fetch
from gravitas.streams.cli.main import app


def test_pixel_commands_have_examples() -> None:
    runner = CliRunner()
    for cmd in ("ingest", "search", "layers", "quicklook", "quickstart"):
        res = runner.invoke(app, [cmd, "--help"])
        assert res.exit_code == 0 and "Example:" in res.output, cmd


def test_ingest_layers_search_quicklook(tmp_path: Path) -> None:
    runner = CliRunner()
    data = str(tmp_path / "node")
    nc = str(fetch("stageiv_nc"))
    res = runner.invoke(app, ["ingest", nc, "--layer-name", "stageiv", "--data", data])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["layers", "--data", data])
    assert "stageiv" in res.output and "23" in res.output
    res = runner.invoke(
        app,
        ["search", "stageiv", "value > 100", "--bbox", "-81,32,-74,38",
         "--time", "2018-09-13/2018-09-15", "--data", data],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "matching pixels" in res.output and "blocks read" in res.output
    png = tmp_path / "q.png"
    res = runner.invoke(app, ["quicklook", "stageiv", "--out", str(png), "--data", data])
    assert res.exit_code == 0, res.output
    with Image.open(png) as img:
        assert img.size[0] >= 256
