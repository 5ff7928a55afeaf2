"""A tiny guard process that stops the broker JVM if its Python parent dies.

``atexit`` does not run when Python is killed, so :class:`KafkaBroker` also starts this
guard with a pipe on its stdin. When the pipe closes (the parent exited, however), the
guard sends SIGTERM to the JVM's process group, waits, then sends SIGKILL. A clean
``stop()`` kills the guard first.
"""

from __future__ import annotations

import subprocess
import sys

GUARD_CODE = """
import os, signal, sys, time
pgid, grace = int(sys.argv[1]), float(sys.argv[2])
signal.signal(signal.SIGINT, signal.SIG_IGN)
sys.stdin.buffer.read()
try:
    os.killpg(pgid, signal.SIGTERM)
    end = time.monotonic() + grace
    while time.monotonic() < end:
        os.killpg(pgid, 0)
        time.sleep(0.2)
    os.killpg(pgid, signal.SIGKILL)
except ProcessLookupError:
    pass
"""


def start_guard(pgid: int, grace_s: float) -> subprocess.Popen[bytes]:
    """Start the guard for process group ``pgid``; close its stdin to fire it."""
    return subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", GUARD_CODE, str(pgid), str(grace_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
