"""Events of modules and workflows (agents/modules, agents/workflows)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from gravitas.schemas.base import Event
from gravitas.schemas.events import ID_PATTERN

REF_PATTERN = r"^[a-z][a-z0-9_-]{0,62}@[0-9][0-9A-Za-z.+-]{0,40}$"


class ModuleRecord(Event):
    """A module version as its owner publishes (or deprecates) it, signed by the owner."""

    TYPE: ClassVar[str] = "module.record"
    KEY_FIELD: ClassVar[str] = "ref"
    type: Literal["module.record"] = "module.record"

    ref: str = Field(pattern=REF_PATTERN)
    owner: str = Field(pattern=ID_PATTERN)
    revision: int = Field(ge=1)
    """Increases with every change of this version's record (lifecycle)."""
    module: dict[str, Any]
    signature: str | None = None


class WorkflowRunRequested(Event):
    """Run a workflow spec with parameters (or resume/retry a run from a step)."""

    TYPE: ClassVar[str] = "workflow.run_requested"
    KEY_FIELD: ClassVar[str] = "run_id"
    type: Literal["workflow.run_requested"] = "workflow.run_requested"

    run_id: str = Field(pattern=ID_PATTERN)
    spec: dict[str, Any]
    params: dict[str, Any] = Field(default_factory=dict)
    retry_from: str | None = None
    """Set on a retry: forget this step's (and its dependents') outcomes and run again."""
    attempt: int = Field(default=0, ge=0, le=1000)


class WorkflowCancelRequested(Event):
    """Stop a run: no new step is requested; the run ends ``cancelled``."""

    TYPE: ClassVar[str] = "workflow.cancel_requested"
    KEY_FIELD: ClassVar[str] = "run_id"
    type: Literal["workflow.cancel_requested"] = "workflow.cancel_requested"

    run_id: str = Field(pattern=ID_PATTERN)


class StepRequested(Event):
    """Run one module version on inputs (a workflow step instance)."""

    TYPE: ClassVar[str] = "workflow.step_requested"
    KEY_FIELD: ClassVar[str] = "step_id"
    type: Literal["workflow.step_requested"] = "workflow.step_requested"

    run_id: str = Field(pattern=ID_PATTERN)
    step_id: str = Field(pattern=ID_PATTERN)
    module: str = Field(pattern=REF_PATTERN)
    inputs: dict[str, Any]
    reply_topic: str = "workflows.runs"
    workflow: str = Field(default="", max_length=120)
    """``name@version`` of the workflow the step belongs to (its outputs' provenance)."""
    node: str = Field(default="", max_length=120)
    """The node chosen to run it (federated placement; empty: the node that reads it)."""

    @property
    def request_id(self) -> str:
        """The step id (a forwarded step is a request answered by its ``StepFinished``)."""
        return self.step_id


class StepFinished(Event):
    """The outcome of a step instance: its outputs, or its error."""

    TYPE: ClassVar[str] = "workflow.step_finished"
    KEY_FIELD: ClassVar[str] = "run_id"
    type: Literal["workflow.step_finished"] = "workflow.step_finished"

    run_id: str = Field(pattern=ID_PATTERN)
    step_id: str = Field(pattern=ID_PATTERN)
    module: str = Field(pattern=REF_PATTERN)
    status: Literal["ok", "failed"] = "ok"
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    served_by: str = ""
    warnings: list[str] = Field(default_factory=list)
    bytes_in: int = Field(default=0, ge=0)
    """Bytes of the step's inputs it read where it ran (the data it did not move)."""

    @property
    def request_id(self) -> str:
        """The step id (the answer of a forwarded step)."""
        return self.step_id


StepState = Literal["pending", "running", "ok", "failed", "skipped"]


class WorkflowStatus(Event):
    """Where a run stands (published on every change; the last one is the run's record)."""

    TYPE: ClassVar[str] = "workflow.status"
    KEY_FIELD: ClassVar[str] = "run_id"
    type: Literal["workflow.status"] = "workflow.status"

    run_id: str = Field(pattern=ID_PATTERN)
    status: Literal["running", "succeeded", "failed", "cancelled"]
    steps: dict[str, StepState] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)
    """Per step instance: module version, inputs and the node that ran it."""
    transfer: dict[str, Any] = Field(default_factory=dict)
    """Federated placement: ``bytes_moved`` (step requests and answers sent between
    nodes), ``bytes_if_data_moved`` (the input data other nodes hold, which running
    every step here would have fetched) and per node the step instances it ran."""
    warnings: list[str] = Field(default_factory=list)
    error: str | None = None
    failed_step: str | None = None
    attempt: int = Field(default=0, ge=0)
    """The attempt (retries) of the run request this status answers."""
    fraction: float = Field(default=0.0, ge=0.0, le=1.0)
