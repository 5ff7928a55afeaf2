"""The pure core of a run: given the plan, the parameters and the step outcomes so far,
what to request next and where the run stands. No I/O; the workflow agent feeds it.

Step instance ids are deterministic (``<run>.<attempt>.<step>``, ``.<i>`` per
``for_each`` element, ``.r<k>`` per ``repeat`` iteration), so a replay asks for the same
instances and their consumers drop what they already did.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

from gravitas.agents.workflows.spec import Plan, Ref, parse_ref
from gravitas.schemas.workflows import StepState

MAX_FOR_EACH = 1000
OPS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class Outcome:
    """What one step instance answered."""

    status: str  # ok | failed
    outputs: dict[str, Any]
    error: str | None
    module: str
    served_by: str
    inputs: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    bytes_moved: int = 0
    """Bytes of the step's request and answer that travelled between nodes."""
    bytes_if_data_moved: int = 0
    """Bytes of its input data held on other nodes than the run's (moving the data)."""


@dataclass(frozen=True)
class Request:
    """A step instance to run."""

    instance_id: str
    step: str
    module: str
    inputs: dict[str, Any]


@dataclass
class View:
    """Where a run stands after :func:`advance`."""

    requests: list[Request] = field(default_factory=list)
    steps: dict[str, StepState] = field(default_factory=dict)
    step_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: str = "running"
    error: str | None = None
    failed_step: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    instances_done: int = 0
    instances_known: int = 0


class StepInputError(ValueError):
    """A reference that cannot be resolved at run time (e.g. for_each over a non-list)."""


def resolve_params(plan: Plan, given: dict[str, Any]) -> dict[str, Any]:
    """The run's parameters: given values over the spec's defaults; unknown or missing
    names are refused."""
    declared = plan.spec.get("params", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise StepInputError(f"unknown parameter(s) {unknown}; declared: {sorted(declared)}")
    out: dict[str, Any] = {}
    for name, decl in declared.items():
        if name in given:
            out[name] = given[name]
        elif "default" in decl:
            out[name] = decl["default"]
        else:
            raise StepInputError(f"parameter {name!r} has no default; pass --param {name}=...")
    return out


def _lookup(
    ref: Ref, params: dict[str, Any], outs: dict[str, dict[str, Any]], local: dict[str, Any]
) -> Any:
    if ref.kind == "params":
        return params[ref.parts[0]]
    if ref.kind == "iteration":
        return local["iteration"]
    if ref.kind == "item":
        value = local[ref.parts[0]]
        for p in ref.parts[1:]:
            value = value[p] if isinstance(value, dict) else None
        return value
    src = outs.get(ref.parts[0])
    if src is None:
        return None
    return src.get(ref.parts[1]) if len(ref.parts) > 1 else src


def substitute(
    value: Any, params: dict[str, Any], outs: dict[str, dict[str, Any]], local: dict[str, Any]
) -> Any:
    """``value`` with every reference replaced by what it names."""
    if isinstance(value, dict):
        return {k: substitute(v, params, outs, local) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, params, outs, local) for v in value]
    ref = parse_ref(value, set(local) - {"iteration"}) if isinstance(value, str) else None
    return value if ref is None else _lookup(ref, params, outs, local)


def _with_defaults(plan: Plan, step: str, inputs: dict[str, Any]) -> dict[str, Any]:
    props = plan.modules[step].inputs.get("properties", {})
    full = {k: p["default"] for k, p in props.items() if isinstance(p, dict) and "default" in p}
    full.update(inputs)
    return full


def _compare(left: Any, op: str, right: Any) -> bool:
    try:
        return bool(OPS[op](left, right))
    except TypeError:
        return False


def instance_prefix(run_id: str, attempt: int, step: str) -> str:
    """The id prefix of a step's instances in one attempt of a run."""
    return f"{run_id}.a{attempt}.{step}"


def advance(
    plan: Plan,
    run_id: str,
    params: dict[str, Any],
    attempts: dict[str, int],
    outcomes: dict[str, Outcome],
    cancelled: bool = False,
) -> View:
    """The next requests and the state of every step."""
    view = View()
    outs = view.step_outputs
    for step in plan.order:
        spec = plan.step(step)
        deps = plan.deps[step]
        states = {view.steps[d] for d in deps}
        if "failed" in states or view.status == "failed":
            view.steps[step] = "pending"
            continue
        if states - {"ok", "skipped"}:
            view.steps[step] = "pending"
            continue
        if "skipped" in states:
            view.steps[step] = "skipped"
            continue
        if "when" in spec:
            cond = spec["when"]
            left = substitute(cond["ref"], params, outs, {})
            if not _compare(left, cond["op"], cond["value"]):
                view.steps[step] = "skipped"
                continue
        prefix = instance_prefix(run_id, attempts.get(step, 0), step)
        base_inputs = spec.get("inputs", {})
        if "for_each" in spec:
            items = substitute(spec["for_each"], params, outs, {})
            if not isinstance(items, list) or len(items) > MAX_FOR_EACH:
                _fail(
                    view,
                    step,
                    f"for_each {spec['for_each']} must be a list of at most "
                    f"{MAX_FOR_EACH} elements, got {type(items).__name__}",
                )
                continue
            name = spec.get("as", "item")
            inst = [
                Request(
                    f"{prefix}.{i}",
                    step,
                    spec["module"],
                    _with_defaults(plan, step, substitute(base_inputs, params, outs, {name: it})),
                )
                for i, it in enumerate(items)
            ]
            _collect(view, step, inst, outcomes, plan, spec.get("max_parallel", 16))
        elif "repeat" in spec:
            _repeat(view, plan, step, spec, prefix, params, outcomes)
        else:
            req = Request(
                prefix,
                step,
                spec["module"],
                _with_defaults(plan, step, substitute(base_inputs, params, outs, {})),
            )
            _collect(view, step, [req], outcomes, plan, 1, single=True)
    if cancelled and view.status == "running":
        view.status = "cancelled"
        view.requests = []
    elif view.status == "running" and all(s in ("ok", "skipped") for s in view.steps.values()):
        view.status = "succeeded"
        view.outputs = {
            k: substitute(v, params, outs, {}) for k, v in plan.spec.get("outputs", {}).items()
        }
    if view.status == "failed":
        view.requests = []
    return view


def _fail(view: View, step: str, error: str) -> None:
    view.steps[step] = "failed"
    if view.status != "failed":
        view.status, view.error, view.failed_step = "failed", error, step


def _collect(
    view: View,
    step: str,
    inst: list[Request],
    outcomes: dict[str, Outcome],
    plan: Plan,
    parallel: int,
    single: bool = False,
) -> None:
    view.instances_known += len(inst)
    done = [outcomes[r.instance_id] for r in inst if r.instance_id in outcomes]
    view.instances_done += len(done)
    failed = [
        (r, outcomes[r.instance_id])
        for r in inst
        if r.instance_id in outcomes and outcomes[r.instance_id].status != "ok"
    ]
    if failed:
        r, o = failed[0]
        _fail(view, step, f"step {step} ({r.instance_id}, {o.module}) failed: {o.error}")
        return
    if len(done) == len(inst):
        view.steps[step] = "ok"
        if single:
            view.step_outputs[step] = dict(done[0].outputs)
        else:
            keys = list(plan.modules[step].outputs.get("properties", {}))
            view.step_outputs[step] = {k: [o.outputs.get(k) for o in done] for k in keys}
        return
    view.steps[step] = "running"
    waiting = [r for r in inst if r.instance_id not in outcomes]
    view.requests.extend(waiting[:parallel])


def _repeat(
    view: View,
    plan: Plan,
    step: str,
    spec: dict[str, Any],
    prefix: str,
    params: dict[str, Any],
    outcomes: dict[str, Outcome],
) -> None:
    until, bound = spec["repeat"]["until"], int(spec["repeat"]["max"])
    k = 0
    while True:
        iid = f"{prefix}.r{k}"
        view.instances_known += 1
        if iid not in outcomes:
            inputs = substitute(spec.get("inputs", {}), params, view.step_outputs, {"iteration": k})
            view.requests.append(
                Request(iid, step, spec["module"], _with_defaults(plan, step, inputs))
            )
            view.steps[step] = "running"
            return
        o = outcomes[iid]
        view.instances_done += 1
        if o.status != "ok":
            _fail(view, step, f"step {step} ({iid}, {o.module}) failed: {o.error}")
            return
        if _compare(o.outputs.get(until["output"]), until["op"], until["value"]) or k + 1 >= bound:
            view.steps[step] = "ok"
            view.step_outputs[step] = {**o.outputs}
            return
        k += 1
