"""Failed answers: every request that fails is answered on its reply topic with the cause.

:func:`failure_answers` builds the answer for any event that has a requester (a pixel
search, a Featurize, a datacube request, an onboarding request); events without one
(scenes, pings) get none and are dead-lettered instead; blocks staged for an onboarding
request have its requester (a failed merge is answered ``OnboardingFailed``). The runner
uses it when it gives up on an event, and the parking agent when onboarding fails under
a parked request.
"""

from __future__ import annotations

from gravitas.agents.base import Emit
from gravitas.schemas.agent_answers import MethaneResult, SceneAccepted
from gravitas.schemas.base import Event
from gravitas.schemas.events import (
    BlocksIndexed,
    DatacubeReady,
    DatacubeRequested,
    FeatureResult,
    Featurize,
    MethaneRequested,
    OnboardingFailed,
    OnboardRequested,
    PixelSearch,
    SceneAnnounced,
    SearchResult,
)

__all__ = ["cause_of", "failure_answers", "has_requester"]


def cause_of(exc: BaseException) -> str:
    """``ErrorClass: message``: the cause as the requester reads it."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def has_requester(event: Event) -> bool:
    """Whether somebody waits for an answer to ``event``."""
    if isinstance(event, BlocksIndexed):
        return event.onboards is not None and event.requested_by is not None
    if isinstance(event, MethaneRequested | SceneAnnounced):
        return event.reply_topic is not None
    return isinstance(event, PixelSearch | Featurize | DatacubeRequested | OnboardRequested)


def failure_answers(
    event: Event, cause: str, *, node_id: str, step: str | None = None, error_class: str = ""
) -> list[Emit]:
    """The failed answer(s) to ``event`` naming ``cause`` (none if nobody waits)."""
    if isinstance(event, PixelSearch):
        result = SearchResult(
            request_id=event.request_id, status="failed", error=cause, served_by=node_id
        )
        return [Emit(event.reply_topic, result)]
    if isinstance(event, Featurize):
        feature = FeatureResult(
            request_id=event.request_id, status="failed", error=cause, served_by=node_id
        )
        return [Emit(event.reply_topic, feature)]
    if isinstance(event, DatacubeRequested):
        ready = DatacubeReady(
            request_id=event.request_id, status="failed", failed_step=step, error=cause
        )
        return [Emit(event.reply_topic, ready)]
    if isinstance(event, MethaneRequested) and event.reply_topic:
        methane = MethaneResult(
            request_id=event.request_id, status="failed", scene_id=event.scene_id, error=cause
        )
        return [Emit(event.reply_topic, methane)]
    if isinstance(event, SceneAnnounced) and event.reply_topic:
        accepted = SceneAccepted(
            request_id=event.request_id or event.scene_id,
            status="failed",
            scene_id=event.scene_id,
            collection=event.collection,
            mode=event.mode,
            error=cause,
        )
        return [Emit(event.reply_topic, accepted)]
    if isinstance(event, OnboardRequested):
        failed = OnboardingFailed(
            scene_id=event.scene_id,
            collection=event.collection,
            item_id=event.item_id,
            requested_by=event.requested_by,
            error_class=error_class or cause.split(":", 1)[0],
            cause=cause,
        )
        return [Emit("onboard.results", failed)]
    if isinstance(event, BlocksIndexed) and event.onboards and event.requested_by:
        collection, item_id = event.onboards
        failed = OnboardingFailed(
            scene_id=event.scene_id,
            collection=collection,
            item_id=item_id,
            requested_by=event.requested_by,
            error_class=error_class or cause.split(":", 1)[0],
            cause=cause,
        )
        return [Emit("onboard.results", failed)]
    return []
