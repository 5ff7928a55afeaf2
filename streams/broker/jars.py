"""Resolve the Apache Kafka broker's runtime jars from Maven Central into a local cache.

The jars are the ones the shipped ``pom.xml`` names, copied by Maven's dependency plugin
into ``$GRAVITAS_CACHE/kafka/<version>-<pom hash>/lib``. Resolution happens in a temporary
directory that is renamed into place, so a cache entry is either complete or absent and
a second call costs one ``stat``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from gravitas.schemas.errors import BrokerError
from gravitas.schemas.settings import default_cache_dir as cache_root

KAFKA_VERSION = "4.1.1"
"""The Apache Kafka release (``org.apache.kafka:kafka_2.13``) that ``pom.xml`` pins."""

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
MVN_TIMEOUT_S = 900.0
_TAIL_CHARS = 3000


def pom_bytes() -> bytes:
    """The shipped ``pom.xml`` that lists the broker's dependencies."""
    return resources.files(__package__).joinpath("pom.xml").read_bytes()


def default_cache_dir() -> Path:
    """``$GRAVITAS_CACHE/kafka`` (``GRAVITAS_CACHE`` defaults to ``~/.cache/gravitas``)."""
    return cache_root().expanduser() / "kafka"


def find_tool(name: str) -> str:
    """The absolute path of executable ``name`` on ``PATH``, or a BrokerError saying so."""
    found = shutil.which(name)
    if found is None:
        raise BrokerError(
            f"{name!r} was not found on PATH ({os.environ.get('PATH', '')!r}); the local Kafka "
            f"broker needs Java 17+ and Maven: install them (e.g. apt-get install "
            f"openjdk-17-jre-headless maven) or put them on PATH"
        )
    return found


def tail(text: str, chars: int = _TAIL_CHARS) -> str:
    """The last ``chars`` characters of ``text`` (for error messages)."""
    return text if len(text) <= chars else "..." + text[-chars:]


def _is_complete(lib: Path) -> bool:
    return (lib / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()


def ensure_kafka_jars(
    cache_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Return a ``lib/`` directory holding every jar the Kafka broker needs at run time.

    ``cache_dir`` defaults to :func:`default_cache_dir`; the entry inside it is keyed by
    :data:`KAFKA_VERSION` and a hash of ``pom.xml``. ``progress`` receives one-line status
    messages while Maven runs (only on a cache miss). Raises :class:`BrokerError` when
    ``mvn`` or ``java`` is missing or Maven fails.
    """
    say = progress or (lambda _msg: None)
    pom = pom_bytes()
    key = f"{KAFKA_VERSION}-{hashlib.sha256(pom).hexdigest()[:12]}"
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = base / key
    lib = entry / "lib"
    if _is_complete(lib):
        return lib

    mvn = find_tool("mvn")
    find_tool("java")
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=base))
    try:
        (work / "pom.xml").write_bytes(pom)
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(work / "pom.xml"),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={work / 'lib'}",
        ]
        say(f"resolving Apache Kafka {KAFKA_VERSION} jars with Maven into {lib}")
        started = time.monotonic()
        try:
            done = subprocess.run(
                cmd,
                cwd=work,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=MVN_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.output if isinstance(exc.output, str) else ""
            raise BrokerError(
                f"Maven did not finish within {MVN_TIMEOUT_S:.0f} s: {' '.join(cmd)}\n"
                f"{tail(out)}\nCheck that Maven Central is reachable and retry."
            ) from exc
        if done.returncode != 0 or not _is_complete(work / "lib"):
            raise BrokerError(
                f"Maven failed (exit {done.returncode}) to resolve the Kafka jars: "
                f"{' '.join(cmd)}\n{tail(done.stdout)}\n"
                f"Check that Maven Central is reachable and that Kafka {KAFKA_VERSION} exists."
            )
        (work / "pom.xml").rename(work / "pom.resolved.xml")
        if entry.exists() and not _is_complete(lib):  # a damaged entry: replace it
            shutil.rmtree(entry, ignore_errors=True)
        try:
            work.rename(entry)
        except OSError:
            if not _is_complete(lib):  # not a concurrent winner: a real failure
                raise
        count = len(list(lib.glob("*.jar")))
        say(f"resolved {count} jars in {time.monotonic() - started:.1f} s")
        return lib
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
