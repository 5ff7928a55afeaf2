"""What a Python module function receives besides its inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gravitas.agents.services import NodeServices


@dataclass(frozen=True)
class ModuleContext:
    """The step being run: its deterministic id (use it to name anything the step
    writes, so a replay writes the same bytes under the same key) and the node."""

    step_id: str
    node_id: str
    services: NodeServices | None = None


class ModuleFunction(Protocol):
    """A Python module: JSON inputs in, JSON outputs out (pure, or idempotent by step id)."""

    def __call__(self, inputs: dict[str, Any], ctx: ModuleContext) -> dict[str, Any]: ...
