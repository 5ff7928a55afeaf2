"""Validation of object keys: relative, slash-separated, and never escaping the store.

Rejected with :class:`~gravitas.schemas.errors.UnsafePathError` naming the key:
empty keys, absolute paths (``/x``, ``C:x``), backslashes, NUL and control characters,
empty, ``.`` or ``..`` segments, and keys over 1024 bytes.
"""

from __future__ import annotations

import re

from gravitas.schemas.errors import UnsafePathError

__all__ = ["check_key", "check_prefix"]

MAX_KEY_BYTES = 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise UnsafePathError."""
    if not isinstance(key, str) or not key:
        raise UnsafePathError(f"object key must be a non-empty string, got {key!r}")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise UnsafePathError(f"object key is longer than {MAX_KEY_BYTES} bytes: {key[:80]!r}...")
    if "\\" in key:
        raise UnsafePathError(f"object key must use '/' not backslashes, got {key!r}")
    if _CONTROL.search(key):
        raise UnsafePathError(f"object key must not contain NUL or control characters: {key!r}")
    if key.startswith("/") or _DRIVE.match(key):
        raise UnsafePathError(f"object key must be relative (no leading '/' or drive), got {key!r}")
    for seg in key.split("/"):
        if seg in ("", ".", ".."):
            raise UnsafePathError(
                f"object key must not contain empty, '.' or '..' segments, got {key!r}"
            )
    return key


def check_prefix(prefix: str) -> str:
    """Like :func:`check_key` but allows "" and a trailing '/' (a listing prefix)."""
    if prefix == "":
        return prefix
    check_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix
