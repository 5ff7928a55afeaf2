"""Parsing hrefs into one canonical form, so the policy compares parsed parts, never text.

Accepted: absolute paths, ``file://`` (no host, or ``localhost``), ``http(s)://`` and
``s3://``. Hosts are lowercased and IDNA-encoded (a trailing dot dropped); IPv4 hosts
must be canonical dotted quads (``127.1``, ``2130706433``, ``0x7f.1`` and ``0177.0.0.1``
are refused as ambiguous); IPv6 hosts are compressed. Path segments are compared
percent-decoded; a segment that decodes to ``.``, ``..`` or holds a slash is refused.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import SplitResult, unquote, urlsplit

import idna

from gravitas.storage.hrefs.errors import HrefRefusedError

Scheme = Literal["file", "http", "https", "s3"]
SCHEMES: tuple[Scheme, ...] = ("file", "http", "https", "s3")
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_HREF_CHARS = 4096

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_URL_UNSAFE = re.compile(r"[\s\\]")
_ASCII_HOST = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]*))*$")


@dataclass(frozen=True)
class ParsedHref:
    """One href, parsed and normalised."""

    raw: str
    """The href as given (messages name it)."""
    scheme: Scheme
    host: str = ""
    """Lowercase IDNA host name, canonical IP, or the bucket (s3); "" for files."""
    port: int | None = None
    """The port (the scheme's default when none is written); None for file and s3."""
    path: str = ""
    """Decoded path: the file path (file), the object key (s3), the URL path (http)."""
    segments: tuple[str, ...] = ()
    """Decoded, non-empty path segments (what URL prefixes are matched on)."""

    @property
    def is_url(self) -> bool:
        """True for http(s)."""
        return self.scheme in ("http", "https")

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The host as an IP address when it is written as one."""
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


def parse_href(raw: object) -> ParsedHref:
    """Parse ``raw`` or raise :class:`HrefRefusedError` naming the rule it breaks."""
    if not isinstance(raw, str) or not raw:
        raise HrefRefusedError(str(raw), "an href must be a non-empty string")
    if len(raw) > MAX_HREF_CHARS:
        raise HrefRefusedError(raw, f"longer than {MAX_HREF_CHARS} characters")
    if _CONTROL.search(raw):
        raise HrefRefusedError(raw, "contains a control character")
    if raw.startswith("/") and not raw.startswith("//"):
        return _file(raw, raw)
    if _URL_UNSAFE.search(raw):
        raise HrefRefusedError(raw, "a URL must not hold spaces or backslashes (encode them)")
    try:
        parts = urlsplit(raw)
    except ValueError as exc:
        raise HrefRefusedError(raw, f"not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise HrefRefusedError(
            raw,
            f"scheme {scheme or '(none)'!r} is not one of {', '.join(SCHEMES)} "
            "(or an absolute path)",
        )
    if scheme == "file":
        if parts.netloc.lower() not in ("", "localhost"):
            raise HrefRefusedError(raw, f"a file URL must not name a host ({parts.netloc!r})")
        _no_query(raw, parts)
        return _file(raw, unquote(parts.path))
    if scheme == "s3":
        return _s3(raw, parts)
    return _url(raw, scheme, parts)


def parse_prefix(prefix: str) -> ParsedHref:
    """An allow-listed URL prefix (http or https), parsed like an href."""
    parsed = parse_href(prefix)
    if not parsed.is_url:
        raise HrefRefusedError(prefix, "an allowed URL prefix must be an http(s) URL")
    return parsed


def _file(raw: str, path: str) -> ParsedHref:
    if not path.startswith("/"):
        raise HrefRefusedError(raw, "a local path must be absolute")
    if "\x00" in path:
        raise HrefRefusedError(raw, "the path holds a NUL byte")
    segments = tuple(s for s in path.split("/") if s)
    if ".." in segments:
        raise HrefRefusedError(raw, "the path holds a '..' segment")
    return ParsedHref(raw, "file", path=path, segments=segments)


def _no_query(raw: str, parts: SplitResult) -> None:
    if parts.query or parts.fragment or raw.endswith(("?", "#")):
        raise HrefRefusedError(raw, f"a {parts.scheme} href must not carry a query or fragment")


def _s3(raw: str, parts: SplitResult) -> ParsedHref:
    _no_query(raw, parts)
    bucket = parts.netloc
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,62}", bucket):
        raise HrefRefusedError(raw, f"{bucket!r} is not an S3 bucket name")
    segments = _segments(raw, parts.path)
    return ParsedHref(raw, "s3", host=bucket, path="/".join(segments), segments=segments)


def _url(raw: str, scheme: str, parts: SplitResult) -> ParsedHref:
    if "@" in parts.netloc:
        raise HrefRefusedError(raw, "user information ('user@host') is not allowed in a URL")
    try:
        port = parts.port
    except ValueError:
        raise HrefRefusedError(raw, f"the port of {parts.netloc!r} is not a number") from None
    host = _host(raw, parts)
    segments = _segments(raw, parts.path)
    return ParsedHref(
        raw,
        scheme,  # type: ignore[arg-type]
        host=host,
        port=port if port is not None else DEFAULT_PORTS[scheme],
        path=unquote(parts.path) or "/",
        segments=segments,
    )


def _host(raw: str, parts: SplitResult) -> str:
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise HrefRefusedError(raw, "the URL names no host")
    if parts.netloc.startswith("["):
        if "%" in host:
            raise HrefRefusedError(raw, "IPv6 zone ids are not allowed in a URL")
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise HrefRefusedError(raw, f"{host!r} is not an IPv6 address") from None
    if _NUMERIC_HOST.match(host):
        try:
            canonical = str(ipaddress.IPv4Address(host))
        except ValueError:
            canonical = ""
        if canonical != host:
            raise HrefRefusedError(
                raw, f"host {host!r} is a numeric address not in dotted-quad form (ambiguous)"
            )
        return host
    if _ASCII_HOST.match(host):
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii").lower()
    except idna.IDNAError as exc:
        raise HrefRefusedError(raw, f"host {host!r} is not a valid DNS name ({exc})") from None


def _segments(raw: str, path: str) -> tuple[str, ...]:
    out = []
    for part in path.split("/"):
        if not part:
            continue
        seg = unquote(part)
        if seg in (".", "..") or "/" in seg or "\\" in seg or "\x00" in seg:
            raise HrefRefusedError(
                raw,
                f"path segment {part!r} decodes to {seg!r} (dot segments and encoded "
                "slashes are not allowed)",
            )
        out.append(seg)
    return tuple(out)
