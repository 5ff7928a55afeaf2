"""Shared pieces of a datacube request: its grid level, time windows and step failures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from gravitas.kernels.grid import native_level
from gravitas.schemas.errors import GravitasError, RequestError
from gravitas.schemas.events import DatacubeRequested, Modality
from gravitas.streams.policy import is_transient

__all__ = [
    "STEPS",
    "StepFailed",
    "UnknownLayerError",
    "grid_level",
    "modality_window",
    "step",
]

STEPS = ("match", "filter", "retrieve", "process", "patch", "split", "write")
"""The steps of a datacube request, in order (``DatacubeReady.failed_step``)."""


class UnknownLayerError(RequestError):
    """A modality names a layer that is neither indexed nor registered on this node."""


class StepFailed(GravitasError):
    """A step of the request failed; carries the step name and the original error."""

    def __init__(self, step: str, error: BaseException) -> None:
        super().__init__(f"{step}: {error}")
        self.step = step
        self.error = error


@contextmanager
def step(name: str) -> Iterator[None]:
    """Failures inside become :class:`StepFailed` of ``name``, except transient ones
    (storage, broker, time-outs: :func:`~gravitas.streams.policy.is_transient`), which
    propagate so the runner retries the request instead of failing it for good."""
    try:
        yield
    except StepFailed:
        raise
    except Exception as exc:
        if is_transient(exc):
            raise
        raise StepFailed(name, exc) from exc


def grid_level(req: DatacubeRequested) -> int:
    """The common grid level: ``level``, else the coarsest level as fine as ``resolution_deg``."""
    if req.level is not None:
        return req.level
    assert req.resolution_deg is not None  # the schema requires one of them
    return native_level(req.resolution_deg)


def modality_window(
    req: DatacubeRequested, modality: Modality, reference: bool
) -> tuple[datetime, datetime]:
    """Time window to look for a modality's scenes: the request's, widened by the
    modality's tolerance unless it is the reference modality."""
    if reference:
        return req.time.start, req.time.end
    tol = timedelta(seconds=modality.time_tolerance_s)
    return req.time.start - tol, req.time.end + tol
