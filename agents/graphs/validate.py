"""Structural checks of a process graph before anything runs, each naming node and argument.

The checks cover what openeo-pg-parser-networkx would otherwise fail on with a bare
traceback (or not at all): a graph that is not an object, nodes without ``process_id``,
no or several result nodes, ``from_node`` references to missing nodes, cycles, unknown
processes, arguments a process does not define, required arguments missing, and the
gravitas processes' own arguments (collection ids, output formats).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gravitas.agents.graphs.errors import (
    GraphError,
    ProcessArgumentInvalid,
    ProcessGraphInvalid,
    ProcessGraphMissing,
    ProcessParameterMissing,
    ProcessParameterUnsupported,
    ProcessUnsupported,
)
from gravitas.agents.graphs.registry import process_ids, spec_of
from gravitas.agents.graphs.result import GraphProblem

MAX_NODES = 500
"""Most nodes in one graph, callbacks included."""
MAX_DEPTH = 20
"""Deepest nesting of callbacks / argument values."""


def flat_graph(process_graph: Any) -> Mapping[str, Any]:
    """The flat ``{node id: node}`` mapping of a request body, a process or a bare graph."""
    if not isinstance(process_graph, Mapping) or not process_graph:
        raise ProcessGraphMissing("no process graph: send a JSON object of process nodes")
    if "process" in process_graph and isinstance(process_graph["process"], Mapping):
        process_graph = process_graph["process"]
    if "process_graph" in process_graph:
        process_graph = process_graph["process_graph"]
    if not isinstance(process_graph, Mapping) or not process_graph:
        raise ProcessGraphMissing("process_graph is empty: send at least one process node")
    return process_graph


def _refs(value: Any, depth: int = 0) -> tuple[set[str], list[Mapping[str, Any]]]:
    """``from_node`` ids and callback graphs inside an argument value."""
    if depth > MAX_DEPTH:
        raise ProcessGraphInvalid(f"arguments nest deeper than {MAX_DEPTH} levels")
    nodes: set[str] = set()
    callbacks: list[Mapping[str, Any]] = []
    if isinstance(value, Mapping):
        if "from_node" in value:
            ref = value["from_node"]
            if not isinstance(ref, str):
                raise ProcessGraphInvalid(f"from_node must be a node id string, not {ref!r}")
            nodes.add(ref)
            return nodes, callbacks
        if "process_graph" in value and isinstance(value["process_graph"], Mapping):
            callbacks.append(value["process_graph"])
            return nodes, callbacks
        for v in value.values():
            n, c = _refs(v, depth + 1)
            nodes |= n
            callbacks += c
    elif isinstance(value, list):
        for v in value:
            n, c = _refs(v, depth + 1)
            nodes |= n
            callbacks += c
    return nodes, callbacks


def _check_graph(graph: Mapping[str, Any], problems: list[GraphError], count: list[int]) -> None:
    results = []
    edges: dict[str, set[str]] = {}
    for node_id, node in graph.items():
        count[0] += 1
        if count[0] > MAX_NODES:
            raise ProcessGraphInvalid(f"more than {MAX_NODES} nodes: split the graph")
        if not isinstance(node_id, str) or not node_id or len(node_id) > 200:
            problems.append(ProcessGraphInvalid(f"node id {str(node_id)[:80]!r} is not valid"))
            continue
        if not isinstance(node, Mapping):
            problems.append(ProcessGraphInvalid("a node must be an object", node=node_id))
            continue
        pid = node.get("process_id")
        if not isinstance(pid, str) or not pid:
            problems.append(ProcessGraphInvalid("process_id missing or not a string", node=node_id))
            continue
        args = node.get("arguments", {})
        if not isinstance(args, Mapping):
            problems.append(ProcessGraphInvalid("arguments must be an object", node=node_id))
            continue
        if node.get("result") is True:
            results.append(node_id)
        if pid not in process_ids():
            problems.append(
                ProcessUnsupported(
                    f"process {pid[:80]!r} is not supported (GET /processes lists them)",
                    node=node_id,
                )
            )
        else:
            _check_arguments(node_id, pid, args, problems)
        refs: set[str] = set()
        for name, value in args.items():
            try:
                n, callbacks = _refs(value)
            except GraphError as exc:
                problems.append(ProcessGraphInvalid(str(exc), node=node_id, argument=name))
                continue
            for missing in sorted(n - set(graph)):
                problems.append(
                    ProcessGraphInvalid(
                        f"from_node {missing[:80]!r} names no node of this graph",
                        node=node_id,
                        argument=name,
                    )
                )
            refs |= n & set(graph)
            for cb in callbacks:
                if not cb:
                    problems.append(
                        ProcessGraphInvalid(
                            "callback process graph is empty", node=node_id, argument=name
                        )
                    )
                    continue
                _check_graph(cb, problems, count)
        edges[node_id] = refs
    if len(results) != 1:
        what = "no node has" if not results else f"nodes {results} all have"
        problems.append(ProcessGraphInvalid(f"{what} result: true; mark exactly one node"))
    cycle = _find_cycle(edges)
    if cycle:
        problems.append(ProcessGraphInvalid(f"the graph has a cycle: {' -> '.join(cycle)}"))


def _find_cycle(edges: Mapping[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    for start in edges:
        if state.get(start):
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(edges.get(start, ())))]
        path = [start]
        state[start] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            nxt = todo.pop()
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(edges.get(nxt, ()))))
    return None


def _check_arguments(
    node_id: str, pid: str, args: Mapping[str, Any], problems: list[GraphError]
) -> None:
    spec = spec_of(pid)
    params = {p["name"]: p for p in spec.get("parameters", [])}
    for name in args:
        if name not in params:
            problems.append(
                ProcessParameterUnsupported(
                    f"{pid} has no argument {str(name)[:80]!r}; it takes {sorted(params)}",
                    node=node_id,
                    argument=str(name),
                )
            )
    for name, p in params.items():
        if not p.get("optional", False) and "default" not in p and name not in args:
            problems.append(
                ProcessParameterMissing(
                    f"{pid} needs argument {name!r}", node=node_id, argument=name
                )
            )
    if pid == "load_collection" and "id" in args and not isinstance(args["id"], str):
        problems.append(
            ProcessArgumentInvalid("collection id must be a string", node=node_id, argument="id")
        )
    if pid == "save_result" and isinstance(args.get("format"), str):
        from gravitas.agents.graphs.save import output_format

        try:
            output_format(args["format"])
        except GraphError as exc:
            problems.append(type(exc)(str(exc), node=node_id, argument="format"))


def problems_of(process_graph: Any) -> list[GraphError]:
    """Every structural problem of the graph, as error instances (empty when valid)."""
    try:
        graph = flat_graph(process_graph)
        problems: list[GraphError] = []
        _check_graph(graph, problems, [0])
    except GraphError as exc:
        return [exc]
    return problems


def validate(process_graph: Any) -> list[GraphProblem]:
    """openEO ``/validation``: the graph's problems (empty when it may run)."""
    return [
        GraphProblem(code=e.code, message=str(e), node=e.node, argument=e.argument)
        for e in problems_of(process_graph)
    ]


def check(process_graph: Any) -> Mapping[str, Any]:
    """The flat graph, or raise its first problem."""
    problems = problems_of(process_graph)
    if problems:
        raise problems[0]
    return flat_graph(process_graph)
