"""``python -m gravitas.storage.sampledata [names...]``: fetch samples, one line each.

With no names every sample is fetched. Exits 1 (after trying the rest) if any fails.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from gravitas.storage.sampledata.errors import SampleDataError
from gravitas.storage.sampledata.fetch import fetch, list_samples


def _size(path: Path) -> int:
    """Bytes of a file, or of all files under a directory."""
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    """Fetch the named samples (all by default); print name, size, path; return exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(__doc__.strip())
        for s in list_samples():
            print(f"  {s.name:20s} {s.description}")
        return 0
    names = args or [s.name for s in list_samples()]
    failed = 0
    for name in names:
        start = time.perf_counter()
        try:
            path = fetch(name, progress=lambda msg: print(f"  .. {msg}", flush=True))
        except SampleDataError as exc:
            failed += 1
            print(f"FAIL {name}: {exc}", file=sys.stderr, flush=True)
            continue
        took = time.perf_counter() - start
        print(f"ok   {name:20s} {_size(path) / 1e6:8.2f} MB {took:6.1f}s  {path}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
