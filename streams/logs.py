"""Structured logs: human lines by default, one JSON object per line with ``--log-json``.

Agents log through :func:`event_logger`, which adds the event id and agent to every line.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class HumanFormatter(logging.Formatter):
    """``time level logger: message key=value ...``"""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith("_")
        )
        ts = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{ts} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extras:
            line += f"  {extras}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    """Send gravitas logs to stderr in the chosen format (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json else HumanFormatter())
    root = logging.getLogger("gravitas")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def event_logger(agent: str, event_id: str) -> logging.LoggerAdapter[logging.Logger]:
    """A logger that stamps ``agent`` and ``event_id`` on every line."""
    return logging.LoggerAdapter(
        logging.getLogger(f"gravitas.agents.{agent}"), {"agent": agent, "event_id": event_id}
    )


class _TransientCoordinatorFilter(logging.Filter):
    """aiokafka logs ``GroupCoordinatorNotAvailableError`` at ERROR on every first start
    (the broker is still creating ``__consumer_offsets``) and then retries by itself;
    the line is replaced by one INFO line of ours."""

    def __init__(self) -> None:
        super().__init__()
        self.told = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "GroupCoordinatorNotAvailable" not in record.getMessage():
            return True
        if not self.told:
            self.told = True
            logging.getLogger("gravitas.node").info(
                "waiting for Kafka's group coordinator (normal on a fresh broker; retrying)"
            )
        return False


def quiet_transient_kafka_errors() -> None:
    """Install the filter on aiokafka's group coordinator logger (idempotent)."""
    logger = logging.getLogger("aiokafka.consumer.group_coordinator")
    if not any(isinstance(f, _TransientCoordinatorFilter) for f in logger.filters):
        logger.addFilter(_TransientCoordinatorFilter())
