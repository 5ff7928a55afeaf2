"""Every command, given bad values, prints one error naming the value: never a traceback.

The commands run as a user runs them (``python -m gravitas.streams.cli``, a subprocess),
next to a real embedded node (``gravitas node``) where they need one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command

from gravitas.storage.sampledata import fetch
from gravitas.streams.cli.main import app

CLI = [sys.executable, "-m", "gravitas.streams.cli"]

# (command path, arguments after it, text the error must name). {data} is the running
# node's data dir, {tif} a real Landsat band, {tmp} a scratch folder.
BAD: list[tuple[str, list[str], str]] = [
    ("search", ["stageiv", "> 50", "--bbox", "200,95,10,20", "--data", "{data}"], "200"),
    ("search", ["stageiv", "approx 5", "--data", "{data}"], "approx 5"),
    ("features", ["rain", "--layers", "rain:stageiv", "--data", "{data}"], "rain:stageiv"),
    (
        "features",
        ["rain", "--layers", "rain=stageiv", "--over", "sideways", "--data", "{data}"],
        "sideways",
    ),
    ("features", ["rain", "--layers", "rain=stageiv", "--reduce", "qx", "--data", "{data}"], "qx"),
    ("search", ["stageiv", "> 50", "--time", "notadate", "--data", "{data}"], "notadate"),
    ("search", ["stageiv", "> 50", "--bbox", "1,2,3", "--data", "{data}"], "1,2,3"),
    ("register", ["{tif}", "--collection", "bad coll!", "--data", "{data}"], "bad coll!"),
    ("register", ["{tmp}/missing.tif", "-c", "c", "--data", "{data}"], "missing.tif"),
    ("register", ["{tif}", "-c", "c", "--mode", "teleport", "--data", "{data}"], "teleport"),
    ("catalog search", ["--datetime", "notadate", "--data", "{data}"], "notadate"),
    ("catalog search", ["--bbox", "1,2,x", "--data", "{data}"], "1,2,x"),
    ("catalog search", ["--filter", "eo:cloud_cover <<< 3", "--data", "{data}"], "<<<"),
    ("catalog collections", ["--url", "http://127.0.0.1:1/stac"], "127.0.0.1:1"),
    ("ingest", ["{tmp}/missing.tif", "--data", "{tmp}/n1"], "missing.tif"),
    ("ingest", ["{tif}", "--collection", "bad coll!", "--data", "{tmp}/n2"], "collection"),
    ("layers", ["--data", "{tmp}/nonexistent"], "nonexistent"),
    ("quicklook", ["nosuchlayer", "--out", "{tmp}/q.png", "--data", "{tmp}/n3"], "n3"),
    ("quicklook", ["x", "--out", "{tmp}/q.png", "--time", "2020/x", "-d", "{tmp}/n3"], "n3"),
    ("datacube", ["{tmp}/missing.json", "--data", "{data}"], "missing.json"),
    ("datacube", ["{tmp}/notjson.json", "--data", "{data}"], "notjson.json"),
    ("datacube", ["{tmp}/badfield.json", "--data", "{data}"], "bbox"),
    ("train", ["{tmp}/badfield.json", "--data", "{data}"], "spec.datacube"),
    ("train", ["{tmp}/notjson.json", "--data", "{data}"], "notjson.json"),
    ("methane", ["{tmp}/missing.nc", "--out", "{tmp}/ch4"], "missing.nc"),
    ("methane", ["{tmp}/missing.nc", "--out", "{tmp}/ch4", "--window", "-3"], "-3"),
    ("publish", ["no.such.topic", "{tmp}/notjson.json", "--data", "{data}"], "no.such.topic"),
    ("tail", ["no.such.topic", "--data", "{data}", "--idle-timeout", "1"], "no.such.topic"),
    ("ping", ["--count", "-1", "--data", "{data}"], "--count"),
    ("monitor", ["--once", "--interval", "0", "--data", "{data}"], "--interval"),
    ("nodes", ["--edge", "http://127.0.0.1:1"], "127.0.0.1:1"),
    ("node", ["--broker", "ftp://nowhere", "--data", "{tmp}/n4"], "ftp://nowhere"),
    ("broker", ["--port", "99999", "--data", "{tmp}/k"], "99999"),
    ("config", ["--broker", "ftp://nowhere"], "ftp://nowhere"),
    ("keygen", ["--bits", "12"], "--bits"),
    ("public-key", ["--data", "/proc/version/inside"], "/proc/version/inside"),
    ("quickstart", ["--landsat-dates", "-3", "--data", "{tmp}/n5"], "--landsat-dates"),
    ("samples list", ["--nope"], "--nope"),
    ("samples get", ["nosuchsample", "--out", "{tmp}/s"], "nosuchsample"),
    ("subscribe", ["ops.ping", "http://127.0.0.1:9/h", "-f", "ppm <<< 3", "-d", "{data}"], "<<<"),
    ("subscriptions list", ["--edge", "http://127.0.0.1:1"], "127.0.0.1:1"),
    ("subscriptions delete", ["sub_x", "--data", "{tmp}/nonode"], "nonode"),
    ("schemas export", ["/proc/version/inside"], "/proc/version/inside"),
    ("module list", ["--data", "{tmp}/m1", "--nope"], "--nope"),
    ("module show", ["downscale@latest", "--data", "{tmp}/m1"], "latest"),
    ("module publish", ["{tmp}/badfield.json", "--data", "{data}"], "name"),
    ("module deprecate", ["nosuchmod@1.0.0", "--data", "{data}"], "nosuchmod"),
    ("workflow run", ["{tmp}/badspec.yaml", "--data", "{data}"], "steps.a.module"),
    ("workflow status", ["no-such-run", "--data", "{data}"], "no-such-run"),
    ("workflow cancel", ["bad run!", "--data", "{data}"], "bad run!"),
    ("workflow template", ["nosuchtemplate"], "nosuchtemplate"),
    ("vector add", ["{tmp}/missing.gpkg", "--layer", "x", "--data", "{tmp}/n6"], "missing.gpkg"),
    ("vector layers", ["--data", "{tmp}/n7", "--json", "--nope"], "--nope"),
    (
        "vector stats",
        ["nosuchraster", "-l", "nosuch", "--level", "9", "--data", "{tmp}/n8"],
        "nosuch",
    ),
]


def _commands() -> set[str]:
    root = get_command(app)
    ctx = type(root).context_class(root)

    def walk(cmd: Any, prefix: str) -> Iterator[str]:
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None
                yield from walk(sub, f"{prefix} {name}".strip())
        else:
            yield prefix

    return set(walk(root, ""))


def test_every_command_has_a_bad_value_case() -> None:
    assert _commands() == {cmd for cmd, _, _ in BAD}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("cli-errors")
    data = tmp / "node"
    (tmp / "notjson.json").write_text("not json\n")
    (tmp / "badfield.json").write_text('{"request_id": "r1", "bbox": [1, 2]}\n')
    (tmp / "badspec.yaml").write_text(
        "name: w\nversion: 1.0.0\nsteps:\n  a: {module: nope@1.0.0}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITAS_")}
    env.update(GRAVITAS_DATA_DIR=str(data), GRAVITAS_HTTP_PORT="0", GRAVITAS_NODE_ID="errs")
    node = subprocess.Popen(
        [*CLI, "node"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while not (data / "node.json").exists():
            assert node.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        tif = next(Path(fetch("landsat7_series")).rglob("*_b3.tif"))
        yield {"data": str(data), "tmp": str(tmp), "tif": str(tif)}
    finally:
        node.send_signal(signal.SIGTERM)
        node.wait(30)


@pytest.mark.parametrize(("command", "args", "names"), BAD, ids=[f"{c}:{a}" for c, a, _ in BAD])
def test_bad_values_give_one_error_naming_the_value(
    running: dict[str, str], command: str, args: list[str], names: str
) -> None:
    argv = [*CLI, *command.split(), *(a.format(**running) for a in args)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITAS_")}
    env["COLUMNS"] = "200"
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    text = done.stdout + done.stderr
    assert done.returncode != 0, text
    assert "Traceback" not in text, text
    assert names in text, text
    if command == "layers":  # a read-only command never creates the folder it was given
        assert not Path(running["tmp"], "nonexistent").exists()
