"""Answers of agents that are not request/reply services by default (the ingest and
methane agents announce their results on their own topics); a request that names a
``reply_topic`` (a workflow step) also gets one of these there, ``ok`` or ``failed``."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from gravitas.schemas.base import Event
from gravitas.schemas.events import ID_PATTERN


class MethaneResult(Event):
    """The outcome of one ``MethaneRequested``: the enhancement item and its plumes."""

    TYPE: ClassVar[str] = "methane.result"
    KEY_FIELD: ClassVar[str] = "request_id"
    type: Literal["methane.result"] = "methane.result"

    request_id: str = Field(pattern=ID_PATTERN)
    status: Literal["ok", "failed"] = "ok"
    scene_id: str | None = None
    item_id: str | None = None
    collection: str | None = None
    cog_href: str | None = None
    layer: str | None = None
    background_mean_ppm_m: float | None = None
    max_ppm_m: float | None = None
    plumes: list[dict[str, Any]] = Field(default_factory=list)
    """Per plume: ``plume_id``, ``max_ppm_m``, ``mean_ppm_m``, ``area_m2``, ``ime_kg``."""
    error: str | None = None
    bytes_in: int = Field(default=0, ge=0)
    """Bytes of the radiance file the agent read where it ran (a placed step's record)."""


class SceneAccepted(Event):
    """The outcome of one ``SceneAnnounced``: its STAC item and the layers it indexed."""

    TYPE: ClassVar[str] = "scene.accepted"
    KEY_FIELD: ClassVar[str] = "request_id"
    type: Literal["scene.accepted"] = "scene.accepted"

    request_id: str = Field(pattern=ID_PATTERN)
    status: Literal["ok", "failed"] = "ok"
    scene_id: str | None = None
    collection: str | None = None
    item_id: str | None = None
    version: int | None = None
    mode: str | None = None
    layers: list[str] = Field(default_factory=list)
    """The pixel layers the scene was indexed into (direct mode; none when registered)."""
    error: str | None = None
