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
        text = dict(img.text)
    # placed: the title names the place and the aggregation over the 23 hourly steps,
    # the units come from the item, the top colour is the maximum (164 mm, not 76)
    assert "United States of America" in text["Title"]
    assert "maximum of 23 time steps, 2018-09-13 19:00 to 2018-09-14 17:00 UTC" in text["Title"]
    assert text["gravitas:quantity"] == "stageiv (kg m^-2)"
    assert float(text["gravitas:vmax"]) > 150
    res = runner.invoke(app, ["quicklook", "stageiv", "--out", str(png), "--data", data,
                              "--reduce", "median"])  # fmt: skip
    assert res.exit_code != 0 and "--reduce must be one of" in res.output + str(res.exception)


def test_search_goes_through_a_running_node(tmp_path: Path) -> None:
    """With `gravitas node` running on the data dir (it holds the store), `gravitas
    search` asks that node through its edge; the answer names the node."""
    import os
    import signal
    import subprocess
    import sys
    import time

    data = tmp_path / "node"
    runner = CliRunner()
    res = runner.invoke(
        app, ["ingest", str(fetch("stageiv_nc")), "--layer-name", "stageiv", "--data", str(data)]
    )
    assert res.exit_code == 0, res.output
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITAS_")}
    env.update(GRAVITAS_DATA_DIR=str(data), GRAVITAS_HTTP_PORT="0", GRAVITAS_NODE_ID="busy")
    cli = [sys.executable, "-m", "gravitas.streams.cli"]
    node = subprocess.Popen(
        [*cli, "node"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while not (data / "node.json").exists():
            assert node.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        found = subprocess.run(
            [*cli, "search", "stageiv", "> 100", "--bbox", "-81,32,-74,38",
             "--time", "2018-09-13/2018-09-15"],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert found.returncode == 0, found.stderr
        assert "matching pixels" in found.stdout
    finally:
        node.send_signal(signal.SIGTERM)
        assert node.wait(30) == 0
