"""Errors of the href policy."""

from __future__ import annotations

from gravitas.schemas.errors import TransportError, UnsafePathError


class HrefRefusedError(UnsafePathError):
    """An href the policy refuses; the message names the href and the rule it broke."""

    def __init__(self, href: str, rule: str) -> None:
        self.href = href
        self.rule = rule
        super().__init__(f"href {_shown(href)} refused: {rule}")


class HrefFetchError(TransportError):
    """An admitted http(s) href could not be fetched (network, timeout); worth a retry."""


def _shown(href: str) -> str:
    """The href as printed in a message: quoted, control characters escaped, bounded."""
    text = repr(href)
    return text if len(text) <= 300 else text[:297] + "..."
