"""What a Python module function receives besides its inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gravitas.agents.services import NodeServices
    from gravitas.schemas.events import ItemRegistered


@dataclass(frozen=True)
class ModuleContext:
    """The step being run: its deterministic id (use it to name anything the step
    writes, so a replay writes the same bytes under the same key) and the node.

    ``run_id``, ``workflow`` (``name@version``), ``module`` (``name@version``) and
    ``requested_at`` (when the step was requested) are the provenance a step records on
    what it publishes (:mod:`gravitas.agents.modules.provenance`); ``registrations``
    collects the STAC registrations it made, which the module agent publishes."""

    step_id: str
    node_id: str
    services: NodeServices | None = None
    run_id: str = ""
    workflow: str = ""
    module: str = ""
    requested_at: datetime | None = None
    registrations: list[ItemRegistered] = field(default_factory=list)
    read_bytes: list[int] = field(default_factory=list)
    """Bytes of input data the step read here (appended by the step)."""


class ModuleFunction(Protocol):
    """A Python module: JSON inputs in, JSON outputs out (pure, or idempotent by step id)."""

    def __call__(self, inputs: dict[str, Any], ctx: ModuleContext) -> dict[str, Any]: ...
