"""A RocksDB block-store dir belongs to one process: a second ``gravitas node`` on it
fails at start with one line naming the dir and the supported deployments."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HOLD = (
    "import sys, time\n"
    "from gravitas.storage.blocks.rocksdb import RocksBlockStore\n"
    "s = RocksBlockStore(sys.argv[1])\n"
    "print('holding', flush=True)\n"
    "time.sleep(120)\n"
)


def test_second_process_on_a_rocksdb_dir_fails_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "node"
    blocks = (data / "blocks").resolve()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(blocks)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        before = _data_files(blocks)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITAS_")}
        proc = subprocess.run(
            [sys.executable, "-m", "gravitas.streams.cli", "node", "--data", str(data)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert str(blocks) in lines[0]
    assert "one process per RocksDB dir" in lines[0] and "s3://" in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert _data_files(blocks) == before  # nothing written (RocksDB's info LOG aside)


def _data_files(path: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in path.iterdir()
        if not p.name.startswith(("LOG", "rocksdict-config"))
    }
