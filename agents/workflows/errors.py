"""Errors of workflow specs and runs."""

from __future__ import annotations

from gravitas.schemas.errors import InputError, NotFoundError


class SpecError(InputError):
    """A workflow spec refused before anything runs; the message names the spec path."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"workflow spec {path}: {message}")


class RunNotFoundError(NotFoundError):
    """A run id this node has no record of."""
