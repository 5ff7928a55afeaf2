"""The ``gravitas`` script's dispatch (streams/cli/entry.py): ``gravitas methane`` runs from
an app holding only that command, with the same one-line errors as the whole app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUN = (
    "import sys; sys.argv = ['gravitas', *sys.argv[1:]]; "
    "from gravitas.streams.cli import main; main()"
)


def _gravitas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUN, *args], capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_methane_runs_without_loading_the_whole_app(tmp_path: Path) -> None:
    probe = (
        "import sys; from gravitas.streams.cli.entry import _methane_app; _methane_app(); "
        "print('gravitas.streams.cli.main' in sys.modules, 'xarray' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["False", "False"]
    missing = tmp_path / "EMIT_missing.nc"
    res = _gravitas("methane", str(missing), "--out", str(tmp_path / "o"))
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and str(missing) in lines[0] and "no such file" in lines[0], lines
    bad = _gravitas("methane", str(missing), "--window", "2488-2122")
    assert bad.returncode == 2 and "--window must have LOW < HIGH" in bad.stdout + bad.stderr
    assert not (tmp_path / "o").exists()  # nothing written


def test_other_commands_still_reach_the_whole_app() -> None:
    res = _gravitas("--help")
    assert res.returncode == 0 and "methane" in res.stdout and "samples" in res.stdout
