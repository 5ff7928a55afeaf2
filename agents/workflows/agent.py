"""The workflow agents.

``workflows.requests`` (clients write here) is checked by the intake agent and copied to
``workflows.runs`` (agents only, one partition), which the workflow agent reads: run
requests, cancels, and the answers of step instances (``StepFinished`` from the module
agent, ``SearchResult``/``FeatureResult`` from the discovery agent). For each it updates
the run (:mod:`.store`), asks :func:`.engine.advance` what to run next, and emits the
step requests and a ``WorkflowStatus`` on ``workflows.status``; it never waits for a step.
A replayed event emits what it emitted the first time (stored with the state change).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.agents.modules.catalog import node_catalog
from gravitas.agents.modules.errors import ModuleError
from gravitas.agents.modules.placement import Placement, place
from gravitas.agents.services import NodeServices
from gravitas.agents.workflows.adapters import (
    REPLY_TOPIC,
    StepInputsRefused,
    agent_request,
    answer_outputs,
    answers_module,
)
from gravitas.agents.workflows.agent_placement import place_agent_step
from gravitas.agents.workflows.engine import (
    Outcome,
    Request,
    StepInputError,
    advance,
    resolve_params,
)
from gravitas.agents.workflows.errors import SpecError
from gravitas.agents.workflows.spec import Plan, validate
from gravitas.agents.workflows.store import WorkflowStore
from gravitas.agents.workflows.transfer import transfer_of, transfer_summary, workflow_ref
from gravitas.schemas import agent_answers as aa
from gravitas.schemas import events as ev
from gravitas.schemas import training as tr
from gravitas.schemas import workflows as wf
from gravitas.schemas.base import Event

EMITTABLE: dict[str, type[Event]] = {
    c.__name__: c
    for c in (
        wf.StepRequested,
        wf.WorkflowStatus,
        wf.WorkflowRunRequested,
        wf.WorkflowCancelRequested,
        ev.PixelSearch,
        ev.Featurize,
        tr.TrainingRequested,
        ev.DatacubeRequested,
        ev.MethaneRequested,
        ev.SceneAnnounced,
    )
}
ANSWERS = (
    wf.StepFinished,
    ev.SearchResult,
    ev.FeatureResult,
    tr.ModelTrained,
    ev.DatacubeReady,
    aa.MethaneResult,
    aa.SceneAccepted,
)
"""The step answers the workflow agent reads on ``workflows.runs``."""
STORE_FILE = "workflows.sqlite"


class WorkflowIntakeAgent(Agent):
    """``workflows.requests`` -> ``workflows.runs`` (a run request refused here is
    answered with a failed status naming the spec path; nothing runs)."""

    name = "workflow-intake"
    topic = "workflows.requests"

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        if isinstance(event, wf.WorkflowCancelRequested):
            return [Emit("workflows.runs", event)]
        if not isinstance(event, wf.WorkflowRunRequested):
            return []
        try:
            catalog = await asyncio.to_thread(node_catalog, ctx.services.data_dir)
            plan = validate(event.spec, catalog)
            resolve_params(plan, event.params)
            if event.retry_from is not None and event.retry_from not in plan.spec["steps"]:
                raise SpecError("retry_from", f"unknown step {event.retry_from!r}")
        except (SpecError, StepInputError) as exc:
            ctx.log.info("refused run %s: %s", event.run_id, exc)
            return [
                Emit(
                    "workflows.status",
                    wf.WorkflowStatus(run_id=event.run_id, status="failed", error=str(exc)),
                )
            ]
        return [Emit("workflows.runs", event)]


def _outcome(data: dict[str, Any]) -> Outcome:
    return Outcome(
        data["status"],
        data["outputs"],
        data.get("error"),
        data["module"],
        data.get("served_by", ""),
        data.get("inputs", {}),
        tuple(data.get("warnings", ())),
        int(data.get("bytes_moved", 0)),
        int(data.get("bytes_if_data_moved", 0)),
    )


class WorkflowAgent(Agent):
    """Advances runs on their events (the one writer of the workflow store)."""

    name = "workflows"
    topic = "workflows.runs"

    def __init__(self) -> None:
        self.store: WorkflowStore | None = None

    async def start(self, services: NodeServices) -> None:
        self.store = WorkflowStore(services.data_dir / STORE_FILE)

    async def stop(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        if self.store is None:
            await self.start(ctx.services)
        store = self.store
        assert store is not None
        eid = str(event.event_id)
        again = await asyncio.to_thread(store.handled, eid)
        if again is not None:  # a replay: the same emits, nothing changes
            return [Emit(e["topic"], EMITTABLE[e["cls"]].model_validate(e["event"])) for e in again]
        return await asyncio.to_thread(self._handle, event, ctx, store)

    def _handle(self, event: Event, ctx: AgentContext, store: WorkflowStore) -> list[Emit]:
        eid = str(event.event_id)
        run_change: tuple[str, dict[str, Any], dict[str, int], bool] | None = None
        outcome: tuple[str, str, dict[str, Any]] | None = None
        if isinstance(event, wf.WorkflowRunRequested):
            run_id = event.run_id
            known = store.run(run_id)
            attempts: dict[str, int] = dict(known["attempts"]) if known else {}
            if known is not None and event.retry_from is None:
                store.commit(eid, [])
                return []  # the same run asked again: it already runs
            req = event.model_dump(mode="json")
            if event.retry_from is not None and known is not None:
                plan = self._plan(known["request"]["spec"], ctx)
                again = {event.retry_from} | _descendants(plan, event.retry_from)
                for step in again:
                    attempts[step] = attempts.get(step, 0) + 1
                req = {**known["request"], "retry_from": event.retry_from, "attempt": event.attempt}
            run_change = (run_id, req, attempts, False)
        elif isinstance(event, wf.WorkflowCancelRequested):
            known = store.run(event.run_id)
            if known is None:
                store.commit(eid, [])
                return []
            run_id = event.run_id
            run_change = (run_id, known["request"], known["attempts"], True)
        elif isinstance(event, ANSWERS):
            iid = event.step_id if isinstance(event, wf.StepFinished) else event.request_id
            found = store.instance(iid)
            if found is None:
                store.commit(eid, [])
                return []  # not a step of ours
            run_id, request = found
            if not answers_module(event, request["module"]) and not _forwarded_answer(
                event, request, ctx.services.settings.node_id
            ):
                ctx.log.warning("%s for step %s (%s) ignored", type(event).__name__, iid,
                                request["module"])  # fmt: skip
                store.commit(eid, [])
                return []  # another agent's answer under this step id: not the step's
            state: str
            bytes_in = agent_bytes = 0
            if isinstance(event, wf.StepFinished):
                state, outs, error, node = (
                    event.status,
                    event.outputs,
                    event.error,
                    event.served_by,
                )
                warnings = list(event.warnings)
                bytes_in = event.bytes_in
            else:
                state, outs, error, node, agent_bytes = answer_outputs(event)
                warnings = []
            moved, elsewhere = transfer_of(
                ctx.services.settings.node_id, request, node, outs, bytes_in, agent_bytes
            )
            outcome = (
                iid,
                run_id,
                {
                    "status": state,
                    "outputs": outs,
                    "error": error,
                    "module": request["module"],
                    "served_by": node,
                    "inputs": request["inputs"],
                    "warnings": warnings,
                    "bytes_moved": moved,
                    "bytes_if_data_moved": elsewhere,
                },
            )
        else:
            return []
        emits, instances, latest = self._advance(run_id, store, ctx, run_change, outcome)
        records = [
            {
                "topic": e.topic,
                "cls": type(e.event).__name__,
                "event": e.event.model_dump(mode="json"),
            }
            for e in emits
        ]
        store.commit(
            eid,
            records,
            run=run_change,
            outcome=outcome,
            instances=instances,
            status=(run_id, latest) if latest else None,
        )
        return emits

    def _plan(self, spec: dict[str, Any], ctx: AgentContext) -> Plan:
        return validate(spec, node_catalog(ctx.services.data_dir))

    def _advance(
        self,
        run_id: str,
        store: WorkflowStore,
        ctx: AgentContext,
        run_change: tuple[str, dict[str, Any], dict[str, int], bool] | None,
        outcome: tuple[str, str, dict[str, Any]] | None,
    ) -> tuple[list[Emit], list[tuple[str, str, dict[str, Any]]], dict[str, Any] | None]:
        known = store.run(run_id)
        request = run_change[1] if run_change else known["request"] if known else None
        if request is None:
            return [], [], None
        attempts = run_change[2] if run_change else known["attempts"] if known else {}
        cancelled = run_change[3] if run_change else bool(known and known["cancelled"])
        plan = self._plan(request["spec"], ctx)
        params = resolve_params(plan, request.get("params", {}))
        outcomes = {k: _outcome(v) for k, v in store.outcomes(run_id).items()}
        if outcome is not None:
            outcomes.setdefault(outcome[0], _outcome(outcome[2]))
        view = advance(plan, run_id, params, attempts, outcomes, cancelled)
        already = store.requested(run_id)
        emits: list[Emit] = []
        instances: list[tuple[str, str, dict[str, Any]]] = []
        for r in view.requests:
            if r.instance_id in already:
                continue
            module = plan.modules[r.step]
            placed: dict[str, Any] = {}
            if module.kind == "python":
                where = place(ctx.services, r.inputs)
                placed = {"node": where.node, "held": where.held}
                emits.append(
                    Emit(
                        "modules.requests",
                        wf.StepRequested(
                            run_id=run_id,
                            step_id=r.instance_id,
                            module=r.module,
                            inputs=r.inputs,
                            reply_topic=REPLY_TOPIC,
                            workflow=workflow_ref(plan),
                            node=where.node,
                        ),
                    )
                )
            else:
                # where its input data are: a methane or datacube step whose data another
                # node holds runs on that node's agent (forwarded by the module agent);
                # else here, and the record shows what running it elsewhere would move
                where = place_agent_step(ctx.services, r.module, r.inputs)
                held = where.held or place(ctx.services, r.inputs).held
                placed = {"held": held} if held else {}
                try:
                    module.check_inputs(r.inputs)
                    topic, req = agent_request(r.module, r.instance_id, r.inputs)
                    if where.node != ctx.services.settings.node_id:
                        placed["node"] = where.node
                        topic, req = "modules.requests", forwarded_step(r, run_id, plan, where)
                except (ModuleError, ValueError, KeyError) as exc:  # pydantic: ValueErrors
                    failed = {
                        "status": "failed",
                        "outputs": {},
                        "module": r.module,
                        "error": f"inputs refused: {_named(r.step, exc)}"[:2000],
                        "inputs": r.inputs,
                    }
                    outcomes[r.instance_id] = _outcome(failed)
                    view = advance(plan, run_id, params, attempts, outcomes, cancelled)
                    emits = []
                    instances = []
                    break
                emits.append(Emit(topic, req))
            instances.append(
                (r.instance_id, run_id, {"module": r.module, "inputs": r.inputs, **placed})
            )
        provenance = {
            iid: {
                "module": o.module,
                "inputs": o.inputs,
                "node": o.served_by,
                "bytes_moved": o.bytes_moved,
                "bytes_if_data_moved": o.bytes_if_data_moved,
            }
            for iid, o in sorted(outcomes.items())
            if o.status == "ok"
        }
        transfer = transfer_summary(outcomes.values())
        warnings = sorted({*plan.warnings, *(w for o in outcomes.values() for w in o.warnings)})
        fraction = view.instances_done / view.instances_known if view.instances_known else 1.0
        status = wf.WorkflowStatus(
            run_id=run_id,
            status=view.status,  # type: ignore[arg-type]
            steps=view.steps,
            outputs=view.outputs,
            provenance=provenance,
            transfer=transfer,
            warnings=warnings,
            error=view.error,
            failed_step=view.failed_step,
            attempt=int(request.get("attempt", 0)),
            fraction=1.0 if view.status == "succeeded" else min(fraction, 1.0),
        )
        data = status.model_dump(mode="json", exclude={"event_id", "occurred_at", "node_id"})
        last = known["status"] if known else None
        if data != last:
            emits.append(Emit("workflows.status", status))
            if view.status != "running":
                ctx.log.info("run %s %s", run_id, view.status)
            return emits, instances, data
        return emits, instances, None


def forwarded_step(r: Request, run_id: str, plan: Plan, where: Placement) -> wf.StepRequested:
    """The request of an agent step placed on another node (the module agent forwards
    it to that node's agent and answers with a ``StepFinished`` naming the node)."""
    return wf.StepRequested(
        run_id=run_id,
        step_id=r.instance_id,
        module=r.module,
        inputs=r.inputs,
        reply_topic=REPLY_TOPIC,
        workflow=workflow_ref(plan),
        node=where.node,
    )


def _forwarded_answer(event: Event, request: dict[str, Any], me: str) -> bool:
    """Whether ``event`` is the answer of an agent step this node placed on another node
    (the module agent answers those with a ``StepFinished`` naming where it ran)."""
    node = request.get("node")
    return isinstance(event, wf.StepFinished) and bool(node) and node != me


def _named(step: str, exc: BaseException) -> str:
    """An input refusal naming the input's path in the spec (``steps.S.inputs.X``)."""
    if isinstance(exc, StepInputsRefused):
        return f"steps.{step}.{exc}"
    return str(exc)


def _descendants(plan: Plan, step: str) -> set[str]:
    out: set[str] = set()
    todo = [step]
    while todo:
        cur = todo.pop()
        for name, deps in plan.deps.items():
            if cur in deps and name not in out:
                out.add(name)
                todo.append(name)
    return out
