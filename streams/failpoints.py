"""Failpoints: hold a worker at a named step of a request, so a fault drill's SIGKILL
lands exactly there.

A kill test that watches a request's ``progress`` records and then kills the worker
races the worker: by the time the kill lands, a fast step may already have finished
and the request been answered, so the next attempt the test waits for never comes. With
``GRAVITAS_FAILPOINT=progress:<stage>[@<fraction>]`` a worker publishes the progress
record of that stage (at or past that fraction) and then holds that handler for good:
its outputs are never published and its offset never committed, so a SIGKILL there
is a kill at exactly that step boundary. Other agents of the worker keep running. Meant
for fault drills only; unset (the default) it costs one ``None`` check per progress
record.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from gravitas.schemas.base import Event
from gravitas.schemas.events import Progress
from gravitas.schemas.settings import FAILPOINT_PATTERN

__all__ = ["Failpoint"]

_SPEC = re.compile(FAILPOINT_PATTERN)


@dataclass(frozen=True)
class Failpoint:
    """Hold the handler after it publishes the progress record of ``stage`` whose
    fraction is at least ``fraction``."""

    stage: str
    fraction: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> Failpoint | None:
        """The failpoint a setting names (already checked against the pattern)."""
        if not spec:
            return None
        if not _SPEC.match(spec):
            raise ValueError(f"failpoint {spec!r} is not progress:<stage>[@<fraction>]")
        stage, _, fraction = spec.removeprefix("progress:").partition("@")
        return cls(stage, float(fraction) if fraction else 0.0)

    @property
    def spec(self) -> str:
        return f"progress:{self.stage}@{self.fraction}"

    def matches(self, event: Event) -> bool:
        return (
            isinstance(event, Progress)
            and event.stage == self.stage
            and event.fraction >= self.fraction
        )

    async def hold(self, log: logging.LoggerAdapter[logging.Logger]) -> None:
        """Never return (the drill kills the process here)."""
        log.warning("failpoint %s reached: holding this handler until the worker dies", self.spec)
        await asyncio.Event().wait()
