"""Start Flower's processes in Flower's own interpreter and read what they report.

Flower pins FastAPI, Starlette, Typer, Rich and cryptography to versions the node cannot
use, so its processes run from a separate virtual environment (``scripts/flower-venv``
makes it; ``GRAVITAS_FLOWER_PYTHON`` names another). The scripts they run are this
package's ``flower_server.py`` and ``flower_client.py``, which import only flwr, numpy
and scikit-learn. Each prints one JSON object per line on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gravitas.schemas.errors import ConfigError
from gravitas.schemas.settings import Settings, default_cache_dir

HERE = Path(__file__).resolve().parent
SERVER_SCRIPT = HERE / "flower_server.py"
CLIENT_SCRIPT = HERE / "flower_client.py"
log = logging.getLogger(__name__)


class FlowerUnavailableError(ConfigError):
    """Flower's interpreter is missing (run scripts/flower-venv)."""


def flower_python(settings: Settings) -> Path:
    """The interpreter of Flower's environment, or :class:`FlowerUnavailableError`."""
    path = settings.flower_python or default_cache_dir() / "flower-venv" / "bin" / "python"
    if not Path(path).exists():
        raise FlowerUnavailableError(
            f"Flower's Python {str(path)!r} does not exist: run scripts/flower-venv (or set "
            "GRAVITAS_FLOWER_PYTHON to a Python with flwr, numpy and scikit-learn)"
        )
    return Path(path)


def free_port(host: str) -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class FlowerProcess:
    """One running Flower script with its JSON reports and its stderr log file."""

    proc: asyncio.subprocess.Process
    log_path: Path
    reports: list[dict[str, Any]] = field(default_factory=list)

    async def lines(self) -> AsyncIterator[dict[str, Any]]:
        """The process's JSON reports as they come; ends when it exits."""
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            text = raw.decode(errors="replace").strip()
            if not text.startswith("{"):
                continue
            with contextlib.suppress(json.JSONDecodeError):
                report = json.loads(text)
                self.reports.append(report)
                yield report

    async def wait(self) -> int:
        code = await self.proc.wait()
        # close the pipe transport now, not when it is collected after the loop closed
        transport = getattr(self.proc, "_transport", None)
        if transport is not None:
            transport.close()
        return code

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def tail(self, lines: int = 5) -> str:
        """The last lines of its stderr (for an error message)."""
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])


async def start(
    settings: Settings, script: Path, args: Sequence[str], log_path: Path
) -> FlowerProcess:
    """Run ``script`` with ``args`` in Flower's interpreter (stderr to ``log_path``)."""
    python = flower_python(settings)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            str(python),
            str(script),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            stdin=asyncio.subprocess.DEVNULL,
            cwd=str(HERE),
        )
    log.info("started %s (pid %d)", script.name, proc.pid)
    return FlowerProcess(proc, log_path)
