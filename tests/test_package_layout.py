"""The wheel holds every code sub-package under gravitas/ and nothing else at the top."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE_FOLDERS = ("schemas", "kernels", "storage", "agents", "streams")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    (path,) = out.glob("gravitas-*.whl")
    return path


def test_wheel_contains_every_sub_package_and_nothing_else(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"gravitas", next(t for t in tops if t.endswith(".dist-info"))}
    assert "gravitas/__init__.py" not in names  # a PEP 420 namespace
    expected = {
        "gravitas/" + init.relative_to(ROOT).as_posix()
        for folder in CODE_FOLDERS
        for init in (ROOT / folder).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert expected <= set(names), sorted(expected - set(names))
    for folder in CODE_FOLDERS:
        assert f"gravitas/{folder}/py.typed" in names
    assert "gravitas/streams/broker/pom.xml" in names


def test_no_bare_top_level_packages_are_importable(tmp_path: Path) -> None:
    names = ("storage", "schemas", "agents", "streams", "kernels")
    code = f"import importlib.util as u; print([m for m in {names!r} if u.find_spec(m)])"
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
    ok = subprocess.run(
        [sys.executable, "-c", "import gravitas.storage, gravitas.schemas.events"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
