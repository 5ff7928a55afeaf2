"""Owner-only secret files in a node's data directory (API token, signing key).

A file is created once, atomically (written to a private temporary file, then linked
into place, so concurrent worker processes agree on one value), with mode 0600; a file
that others can read is refused, like ssh refuses a readable private key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from gravitas.schemas.errors import ConfigError


def read_secret(path: Path) -> bytes | None:
    """The stripped content of an owner-only secret file, or None if it does not exist."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} is accessible by other users (mode {stat.filemode(mode)}); "
            f"run `chmod 600 {path}`"
        )
    return path.read_bytes().strip()


def secret_file(path: Path, make: Callable[[], bytes]) -> bytes:
    """The content of ``path``; created (mode 0600) with ``make()`` if it is missing."""
    existing = read_secret(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(make() + b"\n")
        with contextlib.suppress(FileExistsError):  # another process was first: it wins
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    value = read_secret(path)
    if not value:
        raise ConfigError(f"{path} is empty; delete it to have a new one generated")
    return value
