#!/usr/bin/env python3
"""Run the shell examples of Markdown documents exactly as written.

A fenced block is run when the line before it (blank lines aside) is a directive:

    <!-- try -->                 run this ```bash block
    <!-- try: write NAME -->     write this block's text to the file NAME first
    <!-- try: skip REASON -->    do not run it (the reason is printed)

Every ``bash``/``sh``/``console`` block must carry one, so no example goes untested by
accident. The documents run in a fresh ``git clone`` of the repository (its committed
state), as a new user's would: README.md first, whose quickstart makes the clone's
``.venv``. The blocks of one document run in order in ONE bash process (exports and
background jobs carry over) with ``set -euo pipefail`` from the clone's top folder;
background jobs are ended when the document is done. Later documents find the clone's
``.venv/bin`` on their PATH, as in a shell where it is activated. ``XDG_DATA_HOME`` is the
clone's own, so a node's default data folder starts empty; the sample-data cache is shared.

    python scripts/doc_examples.py README.md docs/*.md            # run them
    python scripts/doc_examples.py --check README.md docs/*.md    # only check directives
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SHELL_LANGS = {"bash", "sh", "shell", "console"}
DIRECTIVE = re.compile(r"^<!--\s*try(?::\s*(?P<verb>write|skip)\s*(?P<arg>.*?))?\s*-->\s*$")
FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^`]*)$")


class DocExampleError(Exception):
    """A document's examples are malformed or one of them failed."""


@dataclass(frozen=True)
class Block:
    """One fenced block and what to do with it."""

    doc: Path
    line: int
    lang: str
    text: str
    action: str  # "run" | "write" | "skip" | "none"
    arg: str = ""


def blocks(doc: Path) -> list[Block]:
    """Every fenced block of ``doc`` with the directive before it."""
    lines = doc.read_text().splitlines()
    found: list[Block] = []
    pending: tuple[str, str] | None = None
    i = 0
    while i < len(lines):
        m = DIRECTIVE.match(lines[i].strip())
        if m:
            pending = (m.group("verb") or "run", m.group("arg") or "")
            i += 1
            continue
        f = FENCE.match(lines[i].strip())
        if f:
            fence, lang = f.group("fence"), (f.group("info").split() or [""])[0].lower()
            start = i
            i += 1
            body: list[str] = []
            while i < len(lines) and lines[i].strip() != fence:
                body.append(lines[i])
                i += 1
            action, arg = pending or ("none", "")
            found.append(Block(doc, start + 1, lang, "\n".join(body) + "\n", action, arg))
            pending = None
        elif lines[i].strip():
            pending = None
        i += 1
    return found


def check(doc: Path) -> list[str]:
    """Problems: shell blocks without a directive, writes without a file name."""
    problems = []
    for b in blocks(doc):
        if b.lang in SHELL_LANGS and b.action == "none":
            problems.append(f"{doc}:{b.line}: a {b.lang} block without <!-- try ... -->")
        if b.action == "write" and (not b.arg or "/" in b.arg or b.arg.startswith(".")):
            problems.append(f"{doc}:{b.line}: <!-- try: write NAME --> needs a plain file name")
    return problems


def script_for(doc: Path, sandbox: Path) -> str:
    """The bash script that runs a document's examples in the sandbox."""
    parts = [
        "set -euo pipefail",
        f"cd {shlex.quote(str(sandbox))}",
        "trap 'jobs -p | xargs -r kill 2>/dev/null; wait 2>/dev/null || true' EXIT",
    ]
    for b in blocks(doc):
        where = f"{doc.name}:{b.line}"
        if b.action == "write":
            Path(sandbox, b.arg).write_text(b.text)
            parts.append(f"echo {shlex.quote(f'--- {where}: wrote {b.arg}')}")
        elif b.action == "skip":
            parts.append(f"echo {shlex.quote(f'--- {where}: skipped ({b.arg})')}")
        elif b.action == "run":
            parts.append(f"echo {shlex.quote(f'--- {where}')}")
            parts.append(b.text)
    return "\n".join(parts) + "\n"


def fresh_clone(repo: Path) -> Path:
    """A new clone of the repository's committed state, with its own XDG data folder."""
    sandbox = Path(tempfile.mkdtemp(prefix="try-readme-")) / "gravitas"
    subprocess.run(["git", "clone", "-q", str(repo), str(sandbox)], check=True)
    (sandbox / ".xdg").mkdir()
    return sandbox


def run(doc: Path, sandbox: Path, timeout: float) -> float:
    """Run one document's examples in the clone; its duration in seconds."""
    env = dict(os.environ)
    env = {k: v for k, v in env.items() if not k.startswith("GRAVITAS_") or k in KEEP_ENV}
    env.pop("VIRTUAL_ENV", None)
    env["XDG_DATA_HOME"] = str(sandbox / ".xdg")
    venv_bin = sandbox / ".venv" / "bin"
    if venv_bin.is_dir():
        env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    script = script_for(sandbox / doc, sandbox)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=sandbox,
        env=env,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        raise DocExampleError(f"{doc}: examples still running after {timeout:.0f} s") from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)  # whatever the examples left in the background
    if code != 0:
        raise DocExampleError(
            f"{doc}: an example failed with exit status {code} (sandbox {sandbox})"
        )
    return time.monotonic() - t0


KEEP_ENV = {"GRAVITAS_CACHE", "GRAVITAS_STAC_SCHEMAS"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("docs", nargs="+", type=Path, help="paths relative to the repository")
    parser.add_argument("--check", action="store_true", help="only check the directives")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per document")
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    problems = [p for d in args.docs for p in check(repo / d)]
    for p in problems:
        print(p, file=sys.stderr)
    if problems or args.check:
        return 1 if problems else 0
    sandbox = fresh_clone(repo)
    print(f"=== a fresh clone in {sandbox}", flush=True)
    for doc in args.docs:
        if not any(b.action == "run" for b in blocks(sandbox / doc)):
            continue
        print(f"=== {doc}", flush=True)
        try:
            took = run(doc, sandbox, args.timeout)
        except DocExampleError as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            return 1
        print(f"=== {doc}: ok in {took:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
