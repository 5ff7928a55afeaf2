"""Why a webhook call was refused (each with the HTTP status it is answered with)."""

from __future__ import annotations

from gravitas.schemas.errors import InputError


class WebhookRefusedError(InputError):
    """A hostile or malformed inbound call; ``status`` is the HTTP answer."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        """A short class for metrics (``signature``, ``timestamp``, ``topic``, ...)."""
