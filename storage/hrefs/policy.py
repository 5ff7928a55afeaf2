"""The one href policy of a node: which files, URLs and objects a scene may name.

Every data mode and every asset (data, masks, sidecars) goes through
:meth:`HrefPolicy.check` when the event arrives and again right before each read:

- **local files** (a path or ``file://``): the real path (``..`` refused, symlinks
  resolved) must lie under an allowed root (``GRAVITAS_ALLOWED_ROOTS``; by default
  ``<data dir>/files`` and the sample-data cache) or the node's object store; the
  node's own state (the rest of its data dir) is never a source, whatever the roots.
- **http(s) URLs**: scheme, host (exact, case-insensitive, IDNA), port and leading path
  segments must match an entry of ``GRAVITAS_ALLOWED_URL_PREFIXES`` (parsed, never
  compared as text), and every address the host resolves to must be public unless that
  entry names the address (see :mod:`.addresses`).
- **s3://**: only objects of this node's own object store (same bucket, under its prefix).

Anything else is refused with :class:`HrefRefusedError`, naming the href and the rule.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gravitas.schemas.errors import ConfigError
from gravitas.schemas.settings import Settings
from gravitas.storage.hrefs.addresses import IPAddress, check_addresses
from gravitas.storage.hrefs.errors import HrefRefusedError
from gravitas.storage.hrefs.parse import ParsedHref, parse_href, parse_prefix

__all__ = ["DEFAULT_INBOX", "CheckedHref", "HrefPolicy"]

DEFAULT_INBOX = "files"
"""The folder of the data dir whose files may be read when no roots are configured."""


@dataclass(frozen=True)
class CheckedHref:
    """An href the policy admitted, with what a reader needs to read exactly that."""

    href: ParsedHref
    path: Path | None = None
    """The real path of a local file."""
    address: IPAddress | None = None
    """The checked address to connect to (http(s)); None when not resolved."""
    key: str | None = None
    """The object-store key of an s3 href (relative to the store's prefix)."""


@dataclass(frozen=True)
class HrefPolicy:
    """What a node may read. Build it with :meth:`from_settings`."""

    roots: tuple[Path, ...]
    """Real paths of the directories whose files may be read."""
    url_prefixes: tuple[ParsedHref, ...]
    """Parsed allow-listed URL prefixes."""
    store_root: Path | None = None
    """The local object store's real path (its files are the node's managed copies)."""
    store_bucket: str | None = None
    store_prefix: str = ""
    """The S3 object store's bucket and key prefix."""
    state_dir: Path | None = None
    """The node's data dir: never a source, except its object store and allowed roots
    strictly inside it."""

    @classmethod
    def from_settings(cls, settings: Settings) -> HrefPolicy:
        """The policy of a node with ``settings`` (read again for every check)."""
        from gravitas.storage.sampledata import cache_root

        roots = [Path(p) for p in settings.allowed_roots] or [
            settings.data_dir / DEFAULT_INBOX,
            cache_root(),
        ]
        store = settings.object_store or str(settings.data_dir / "objects")
        store_root = bucket = None
        prefix = ""
        if store.startswith("s3://"):
            from gravitas.storage.s3client import parse_s3_url

            loc = parse_s3_url(store)
            bucket, prefix = loc.bucket, loc.prefix
        else:
            store_root = _real(Path(store.removeprefix("file://")))
        return cls(
            roots=tuple(_real(r) for r in roots),
            url_prefixes=tuple(_prefix(p) for p in settings.allowed_url_prefixes),
            store_root=store_root,
            store_bucket=bucket,
            store_prefix=prefix,
            state_dir=_real(settings.data_dir),
        )

    def check(self, href: str, *, resolve: bool = True, must_exist: bool = False) -> CheckedHref:
        """Admit ``href`` or raise :class:`HrefRefusedError`.

        ``resolve``: resolve an http(s) host and check its addresses (always before a
        read). ``must_exist``: a local file must exist and be a regular file (reads).
        """
        parsed = parse_href(href)
        if parsed.scheme == "file":
            return CheckedHref(parsed, path=self.local_path(parsed, must_exist=must_exist))
        if parsed.scheme == "s3":
            return CheckedHref(parsed, key=self._store_key(parsed))
        prefix = self.url_prefix(parsed)
        address = check_addresses(parsed, prefix) if resolve else None
        return CheckedHref(parsed, address=address)

    def local_path(self, href: ParsedHref, *, must_exist: bool = False) -> Path:
        """The real path of a local href, confined to the roots and the object store."""
        real = _real(Path(href.path))
        shown = f" (it resolves to {real})" if str(real) != href.path.rstrip("/") else ""
        if self.store_root is not None and real.is_relative_to(self.store_root):
            pass  # the node's own managed copies
        elif not any(real.is_relative_to(r) for r in self.roots):
            raise HrefRefusedError(
                href.raw,
                f"outside the allowed roots {[str(r) for r in self.roots]}{shown}; add its "
                "folder to GRAVITAS_ALLOWED_ROOTS or copy the file there",
            )
        elif self._is_state(real):
            raise HrefRefusedError(
                href.raw,
                f"inside the node's own data dir {self.state_dir}{shown}, which is never a "
                "source; allow a folder inside it in GRAVITAS_ALLOWED_ROOTS to read there",
            )
        if must_exist and not real.is_file():
            raise HrefRefusedError(href.raw, f"{real} is not a readable regular file")
        return real

    def _is_state(self, real: Path) -> bool:
        """True if ``real`` is node state: under the data dir and under no allowed root
        that lies strictly inside it."""
        state = self.state_dir
        if state is None or not real.is_relative_to(state):
            return False
        return not any(
            r != state and r.is_relative_to(state) and real.is_relative_to(r) for r in self.roots
        )

    def url_prefix(self, href: ParsedHref) -> ParsedHref:
        """The allow-listed prefix ``href`` falls under (scheme, host, port, segments)."""
        for prefix in self.url_prefixes:
            if (
                prefix.scheme == href.scheme
                and prefix.host == href.host
                and prefix.port == href.port
                and href.segments[: len(prefix.segments)] == prefix.segments
            ):
                return prefix
        allowed = [p.raw for p in self.url_prefixes] or "none"
        raise HrefRefusedError(
            href.raw,
            f"not under an allowed URL prefix ({href.scheme}://{_netloc(href)}"
            f"/{'/'.join(href.segments)} matches none of {allowed}, compared by scheme, host, "
            "port and path segments); add its prefix to GRAVITAS_ALLOWED_URL_PREFIXES",
        )

    def _store_key(self, href: ParsedHref) -> str:
        bucket = self.store_bucket
        prefix = tuple(s for s in self.store_prefix.split("/") if s)
        if bucket is None or href.host != bucket or href.segments[: len(prefix)] != prefix:
            store = f"s3://{bucket}/{self.store_prefix}" if bucket else "a local directory"
            raise HrefRefusedError(
                href.raw,
                f"an s3 href must name this node's object store ({store}); other buckets "
                "are not readable here",
            )
        key = "/".join(href.segments[len(prefix) :])
        if not key:
            raise HrefRefusedError(href.raw, "an s3 href must name an object, not a prefix")
        return key


def _netloc(href: ParsedHref) -> str:
    host = f"[{href.host}]" if ":" in href.host else href.host
    return f"{host}:{href.port}"


def _prefix(text: str) -> ParsedHref:
    try:
        return parse_prefix(text)
    except HrefRefusedError as exc:
        raise ConfigError(
            f"GRAVITAS_ALLOWED_URL_PREFIXES entry {text!r} is not usable: {exc.rule}"
        ) from None


def _real(path: Path) -> Path:
    """The real absolute path (symlinks and ``..`` resolved, missing tails kept)."""
    return Path(os.path.realpath(path.expanduser()))
