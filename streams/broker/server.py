"""A real one-node Apache Kafka broker (KRaft) run as a JVM subprocess on 127.0.0.1.

Used by the test suite (one broker per session) and by ``gravitas broker``. The jars come
from :func:`ensure_kafka_jars`; the data dir layout is described in
:mod:`gravitas.streams.broker.config`. A broker restarted on the same data dir keeps its
ports, cluster id and topics.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gravitas.schemas.errors import BrokerError, InputError
from gravitas.storage.lifecycle import StartStop
from gravitas.storage.ports import free_ports
from gravitas.streams.broker import config
from gravitas.streams.broker._sync import run_sync
from gravitas.streams.broker._watchdog import start_guard
from gravitas.streams.broker.admin import broker_ready
from gravitas.streams.broker.jars import KAFKA_VERSION, ensure_kafka_jars, find_tool, tail

START_TIMEOUT_S = 90.0
STOP_GRACE_S = 20.0
FORMAT_TIMEOUT_S = 120.0
_HEAP_RE = re.compile(r"^(\d+)([kKmMgG]?)$")
_MIB = {"": 1 / (1 << 20), "k": 1 / 1024, "m": 1, "g": 1024}


def _heap_mib(heap: str) -> float:
    match = _HEAP_RE.match(heap)
    if match is None:
        raise InputError(
            f"invalid JVM heap size {heap!r}: use a number with k, m or g, e.g. '512m'"
        )
    mib = int(match.group(1)) * _MIB[match.group(2).lower()]
    if mib < 128:
        raise InputError(
            f"JVM heap {heap!r} is too small for a Kafka broker: use at least '128m' ('512m' "
            f"is the default)"
        )
    return mib


class KafkaBroker(StartStop):
    """A local Apache Kafka broker+controller; a context manager or ``start()``/``stop()``.

    ``data_dir=None`` uses a fresh temporary dir that ``stop()`` deletes; a given dir is
    kept, and a restart on it reuses its ports and data. ``port`` fixes the client port
    (default: the persisted one, else a free one). ``heap`` is the JVM's ``-Xmx``.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        port: int | None = None,
        heap: str = "512m",
        *,
        start_timeout: float = START_TIMEOUT_S,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self._heap_mib = _heap_mib(heap)
        self.heap = heap
        self._data_dir = Path(data_dir).expanduser().resolve() if data_dir is not None else None
        self._owns_dir = data_dir is None
        self._requested_port = port
        self.start_timeout = start_timeout
        self._progress = progress or (lambda _msg: None)
        self._state: config.BrokerState | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._guard: subprocess.Popen[bytes] | None = None

    # -- public surface -------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        """The broker's data dir (known once started, or when given)."""
        if self._data_dir is None:
            raise BrokerError("the broker has no data dir yet: call start() first")
        return self._data_dir

    @property
    def port(self) -> int:
        """The client listener port on 127.0.0.1."""
        return self._require_state().port

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``, for aiokafka's ``bootstrap_servers``."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``kafka://127.0.0.1:PORT``, for faust's ``broker`` setting."""
        return f"kafka://{self.bootstrap}"

    @property
    def pid(self) -> int | None:
        """The JVM's process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        """True while the JVM process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> KafkaBroker:
        """Resolve the jars, format the storage if new, start the JVM, wait until ready."""
        if self.running:
            return self
        java = find_tool("java")
        lib = ensure_kafka_jars(progress=self._progress)
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="gravitas-kafka-"))
        self._data_dir.mkdir(parents=True, exist_ok=True)
        state = self._prepare_state()
        properties = config.write_config(self._data_dir, state)
        self._state = state
        if not config.is_formatted(self._data_dir):
            self._format(java, lib, properties, state.cluster_id)
        self._launch(java, lib, properties)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM the JVM's process group, SIGKILL it after 20 s; delete a temporary dir."""
        atexit.unregister(self.stop)
        if self._guard is not None:
            self._guard.kill()
            self._guard.wait()
            if self._guard.stdin is not None:
                self._guard.stdin.close()
            self._guard = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        if self._owns_dir and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None
            self._state = None

    def __repr__(self) -> str:
        where = self.bootstrap if self._state is not None else "not started"
        return f"KafkaBroker(kafka {KAFKA_VERSION}, {where}, data_dir={self._data_dir})"

    # -- steps of start() -----------------------------------------------------------

    def _require_state(self) -> config.BrokerState:
        if self._state is None:
            raise BrokerError("the broker has not been started: call start() first")
        return self._state

    def _prepare_state(self) -> config.BrokerState:
        data_dir = self.data_dir
        old = config.load_state(data_dir) if config.is_formatted(data_dir) else None
        if old is not None:
            port = self._requested_port or old.port
            state = config.BrokerState(port, old.controller_port, old.cluster_id)
        else:
            ports = free_ports(2)
            port = self._requested_port or ports[0]
            controller = ports[1] if ports[1] != port else free_ports(1)[0]
            cluster_id = config.formatted_cluster_id(data_dir) or config.new_cluster_id()
            state = config.BrokerState(port, controller, cluster_id)
        config.save_state(data_dir, state)
        return state

    def _jvm(self, java: str, lib: Path, *flags: str) -> list[str]:
        return [
            java,
            *flags,
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / config.LOG4J_FILE}",
            f"-Dkafka.logs.dir={self.data_dir / config.LOGS_DIR}",
            "-cp",
            f"{lib}/*",
        ]

    def _format(self, java: str, lib: Path, properties: Path, cluster_id: str) -> None:
        cmd = [
            *self._jvm(java, lib),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(properties),
        ]
        self._progress(f"formatting Kafka storage in {self.data_dir / config.LOG_DIRS}")
        try:
            done = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=FORMAT_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"formatting the Kafka storage timed out: {' '.join(cmd)}") from exc
        if done.returncode != 0:
            raise BrokerError(
                f"formatting the Kafka storage failed (exit {done.returncode}): "
                f"{' '.join(cmd)}\n{tail(done.stdout)}\n"
                f"Delete the data dir {self.data_dir} and retry."
            )

    def _launch(self, java: str, lib: Path, properties: Path) -> None:
        xms = min(256.0, self._heap_mib)
        cmd = [
            *self._jvm(
                java, lib, f"-Xms{int(xms)}m", f"-Xmx{self.heap}", "-XX:+ExitOnOutOfMemoryError"
            ),
            "kafka.Kafka",
            str(properties),
        ]
        out = (self.data_dir / config.OUT_FILE).open("ab")
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,  # own process group: no stray Ctrl-C, one killpg
            )
        finally:
            out.close()
        atexit.register(self.stop)
        self._guard = start_guard(self._proc.pid, STOP_GRACE_S)
        self._progress(f"started Kafka {KAFKA_VERSION} (pid {self._proc.pid}) on {self.bootstrap}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            self._raise_if_dead()
            if _port_open(self.port) and run_sync(broker_ready(self.bootstrap, timeout=5)):
                return
            time.sleep(0.25)
        raise BrokerError(
            f"the Kafka broker on {self.bootstrap} was not ready within {self.start_timeout} s; "
            f"its log:\n{self._log_tail()}"
        )

    def _raise_if_dead(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            code = self._proc.returncode
            raise BrokerError(
                f"the Kafka broker exited with code {code} while starting (data dir "
                f"{self.data_dir}); its log:\n{self._log_tail()}\nFix the cause above (a port "
                f"in use: pass another port; a damaged data dir: delete it) and start again."
            )

    def _log_tail(self) -> str:
        parts = []
        out = self.data_dir / config.OUT_FILE
        if out.is_file() and out.stat().st_size:
            parts.append(f"--- {out}\n{tail(out.read_text(errors='replace'), 1500)}")
        log = self.data_dir / config.LOGS_DIR / "server.log"
        if log.is_file():
            parts.append(f"--- {log} (stack frames left out)\n{_summarize(log)}")
        return "\n".join(parts) or "(no log written)"


def _summarize(log: Path, max_lines: int = 25) -> str:
    """The log's last distinct lines without Java stack frames (they hide the cause)."""
    seen: dict[str, None] = {}
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith(("\tat ", "\t...")) or not line.strip():
            continue
        seen.pop(line, None)
        seen[line] = None
    lines = list(seen)[-max_lines:]
    return "\n".join(lines) if lines else "(empty)"


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
