"""Workflow specs: parse (YAML or JSON), validate against the shipped JSON Schema, resolve
module versions, order steps by their data dependencies, and refuse bad specs before
anything runs, naming the path in the spec (``steps.b.inputs.x``).

References are whole strings: ``${params.x}``, ``${steps.a.outputs.y}`` (a ``for_each``
step's output is the list of its iterations' outputs), ``${item}`` (the ``for_each``
element, or the name given by ``as``) and ``${iteration}`` (inside ``repeat``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import networkx as nx
import yaml

from gravitas.agents.modules.builtin import RUNNABLE_AGENT_MODULES
from gravitas.agents.modules.errors import ModuleError, UnknownModuleError
from gravitas.agents.modules.model import Module
from gravitas.agents.modules.registry import ModuleCatalog
from gravitas.agents.workflows.errors import SpecError

REF = re.compile(r"^\$\{([a-z_][a-z0-9_]*(?:\.[A-Za-z0-9_-]+)*)\}$")
MAX_SPEC_BYTES = 256 * 1024


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of a workflow spec (shipped in the package)."""
    text = files("gravitas.agents.workflows").joinpath("workflow.schema.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return]


def load_spec(path: Path) -> dict[str, Any]:
    """A spec file (``.yaml``/``.yml``/``.json``) as a dict; a spec error names the file."""
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise SpecError(str(path), f"is larger than {MAX_SPEC_BYTES} bytes")
    text = path.read_text()
    try:
        data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise SpecError(str(path), f"is not valid YAML/JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise SpecError(str(path), "must be a mapping with name, version and steps")
    return data


@dataclass(frozen=True)
class Ref:
    """A parsed reference."""

    kind: str  # params | steps | item | iteration
    parts: tuple[str, ...]


def parse_ref(value: Any, item_names: set[str] | None = None) -> Ref | None:
    """The reference a string holds, or None for a literal."""
    if not isinstance(value, str) or not value.startswith("${"):
        return None
    m = REF.match(value)
    if m is None:
        raise ValueError(f"{value!r} is not a reference (${{params.x}}, ${{steps.a.outputs.y}})")
    parts = tuple(m.group(1).split("."))
    if parts[0] == "params" and len(parts) == 2:
        return Ref("params", parts[1:])
    if parts[0] == "steps" and len(parts) >= 3 and parts[2] == "outputs":
        return Ref("steps", (parts[1], *parts[3:]))
    if parts[0] == "iteration" and len(parts) == 1:
        return Ref("iteration", ())
    if item_names is not None and parts[0] in item_names:
        return Ref("item", parts)
    raise ValueError(
        f"{value!r} names nothing: use params.NAME, steps.STEP.outputs.NAME, "
        "the for_each item or iteration"
    )


def refs_in(value: Any, path: str) -> list[tuple[str, Any]]:
    """Every string leaf (with its path) inside a literal structure."""
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in refs_in(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [r for i, v in enumerate(value) for r in refs_in(v, f"{path}[{i}]")]
    return [(path, value)]


@dataclass
class Plan:
    """A validated spec: its modules and the order its steps may run in."""

    spec: dict[str, Any]
    modules: dict[str, Module]
    order: list[str]
    deps: dict[str, set[str]]
    warnings: list[str] = field(default_factory=list)

    def step(self, name: str) -> dict[str, Any]:
        """The spec of step ``name``."""
        return self.spec["steps"][name]  # type: ignore[no-any-return]


def _type_ok(have: str | None, want: str | None) -> bool:
    if have is None or want is None:
        return True
    return have == want or (have == "integer" and want == "number")


def _schema_errors(spec: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(spec_schema())
    errors = sorted(validator.iter_errors(spec), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = ".".join(str(p) for p in e.absolute_path) or "(top)"
        raise SpecError(where, e.message)


def validate(spec: dict[str, Any], catalog: ModuleCatalog) -> Plan:
    """The plan of a spec, or :class:`SpecError` naming the first problem's path."""
    _schema_errors(spec)
    steps: dict[str, dict[str, Any]] = spec["steps"]
    params: dict[str, dict[str, Any]] = spec.get("params", {})
    modules: dict[str, Module] = {}
    warnings: list[str] = []
    for name, step in steps.items():
        try:
            module = catalog.get(step["module"])
        except (ModuleError, UnknownModuleError) as exc:
            raise SpecError(f"steps.{name}.module", str(exc)) from None
        if module.kind == "agent" and module.name not in RUNNABLE_AGENT_MODULES:
            raise SpecError(
                f"steps.{name}.module",
                f"{module.ref} cannot run as a step yet "
                f"(runnable agent modules: {sorted(RUNNABLE_AGENT_MODULES)})",
            )
        if module.lifecycle == "deprecated":
            warnings.append(f"step {name}: module {module.ref} is deprecated")
        if "for_each" in step and "repeat" in step:
            raise SpecError(f"steps.{name}", "a step takes for_each or repeat, not both")
        modules[name] = module
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(steps)
    for name, step in steps.items():
        items = {step.get("as", "item")} if "for_each" in step else set()
        sources: list[tuple[str, Any]] = refs_in(step.get("inputs", {}), f"steps.{name}.inputs")
        if "when" in step:
            sources.append((f"steps.{name}.when.ref", step["when"]["ref"]))
        if "for_each" in step:
            sources.append((f"steps.{name}.for_each", step["for_each"]))
        for path, value in sources:
            in_iter = items if path.startswith(f"steps.{name}.inputs") else set()
            try:
                ref = parse_ref(value, in_iter)
            except ValueError as exc:
                raise SpecError(path, str(exc)) from None
            if path.endswith((".when.ref", ".for_each")) and ref is None:
                raise SpecError(path, f"must be a reference, got {value!r}")
            if ref is None:
                continue
            if ref.kind == "iteration" and "repeat" not in step:
                raise SpecError(path, "${iteration} is only defined in a repeat step")
            if ref.kind == "params" and ref.parts[0] not in params:
                raise SpecError(
                    path,
                    f"unknown parameter {ref.parts[0]!r}; declared: {sorted(params) or 'none'}",
                )
            if ref.kind == "steps":
                src = ref.parts[0]
                if src not in steps:
                    raise SpecError(path, f"unknown step {src!r}; steps: {sorted(steps)}")
                if len(ref.parts) > 1 and not modules[src].has_output(ref.parts[1]):
                    raise SpecError(
                        path, f"step {src!r} ({modules[src].ref}) has no output {ref.parts[1]!r}"
                    )
                graph.add_edge(src, name, path=path)
        _check_types(name, step, modules, params, steps)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        cycle = []
    if cycle:
        names = " -> ".join([str(e[0]) for e in cycle] + [str(cycle[0][0])])
        raise SpecError(
            str(graph.edges[cycle[-1][0], cycle[-1][1]]["path"]), f"steps form a cycle: {names}"
        )
    order = list(nx.lexicographical_topological_sort(graph))
    deps = {n: set(graph.predecessors(n)) for n in steps}
    for name, step in steps.items():
        for key in step.get("inputs", {}):
            if (
                modules[name].inputs.get("properties")
                and key not in modules[name].inputs["properties"]
            ):
                raise SpecError(
                    f"steps.{name}.inputs.{key}",
                    f"{modules[name].ref} has no input {key!r}; inputs: "
                    f"{sorted(modules[name].inputs['properties'])}",
                )
        missing = [
            k for k in modules[name].inputs.get("required", []) if k not in step.get("inputs", {})
        ]
        if missing:
            raise SpecError(f"steps.{name}.inputs", f"{modules[name].ref} needs {missing}")
        if "repeat" in step:
            out = step["repeat"]["until"]["output"]
            if not modules[name].has_output(out):
                raise SpecError(
                    f"steps.{name}.repeat.until.output",
                    f"{modules[name].ref} has no output {out!r}",
                )
    return Plan(spec, modules, order, deps, warnings)


def _ref_type(
    ref: Ref,
    modules: dict[str, Module],
    params: dict[str, dict[str, Any]],
    steps: dict[str, dict[str, Any]],
) -> str | None:
    if ref.kind == "params":
        return str(params[ref.parts[0]]["type"])
    if ref.kind == "iteration":
        return "integer"
    if ref.kind == "steps":
        src = ref.parts[0]
        if "for_each" in steps.get(src, {}):
            return "array"
        if len(ref.parts) == 2 and src in modules:
            return modules[src].output_type(ref.parts[1])
    return None


def _check_types(
    name: str,
    step: dict[str, Any],
    modules: dict[str, Module],
    params: dict[str, dict[str, Any]],
    steps: dict[str, dict[str, Any]],
) -> None:
    items = {step.get("as", "item")} if "for_each" in step else set()
    for key, value in step.get("inputs", {}).items():
        ref = parse_ref(value, items) if isinstance(value, str) else None
        if ref is None:
            continue
        have = _ref_type(ref, modules, params, steps)
        want = modules[name].input_type(key)
        if not _type_ok(have, want):
            raise SpecError(
                f"steps.{name}.inputs.{key}",
                f"{value} is {have} but {modules[name].ref} input {key!r} takes {want}",
            )
    if "for_each" in step:
        ref = parse_ref(step["for_each"])
        have = _ref_type(ref, modules, params, steps) if ref else None
        if have not in (None, "array"):
            raise SpecError(f"steps.{name}.for_each", f"{step['for_each']} is {have}, not a list")
