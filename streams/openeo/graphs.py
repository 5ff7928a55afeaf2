"""Process graphs from request bodies: parsed with limits, checked in shape, user-defined
processes resolved (inlined) before the engine sees them.

Limits (hostile inputs): at most :data:`MAX_NODES` nodes over all nesting levels, at most
:data:`MAX_DEPTH` nested callbacks or user-defined processes, JSON nesting as orjson
allows; ids are short and plain.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from gravitas.streams.openeo.errors import (
    JsonInvalidError,
    ProcessGraphInvalidError,
    ProcessGraphMissingError,
)

MAX_NODES = 2000
MAX_DEPTH = 16
NODE_ID_RE = re.compile(r"^[A-Za-z0-9_\-.~]{1,100}$")


def parse_body(body: bytes) -> dict[str, Any]:
    """A JSON object body, or ``JSONInvalid`` naming what is wrong."""
    if not body.strip():
        raise JsonInvalidError("the request body is empty: send a JSON object")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise JsonInvalidError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise JsonInvalidError(f"the request body is a JSON {type(doc).__name__}, not an object")
    return doc


def graph_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The ``process.process_graph`` of a ``/result``, ``/validation`` or ``/jobs`` body
    (``/validation`` also takes the process at the top level)."""
    process = doc.get("process", doc)
    if not isinstance(process, dict) or "process_graph" not in process:
        raise ProcessGraphMissingError(
            'no process graph: send {"process": {"process_graph": {...}}}'
        )
    graph = process["process_graph"]
    check_graph(graph)
    return graph  # type: ignore[no-any-return]


def _children(value: Any) -> Iterator[dict[str, Any]]:
    """Nested process graphs (callbacks) inside an argument value."""
    if isinstance(value, dict):
        if isinstance(value.get("process_graph"), dict):
            yield value["process_graph"]
        else:
            for v in value.values():
                yield from _children(v)
    elif isinstance(value, list):
        for v in value:
            yield from _children(v)


def check_graph(graph: Any, depth: int = 0, counter: list[int] | None = None) -> None:
    """Shape and size limits of a graph and its callbacks."""
    counter = counter if counter is not None else [0]
    if depth > MAX_DEPTH:
        raise ProcessGraphInvalidError(
            f"the process graph nests deeper than {MAX_DEPTH} levels of callbacks"
        )
    if not isinstance(graph, dict) or not graph:
        raise ProcessGraphInvalidError("a process graph is a non-empty object of nodes")
    results = 0
    for node_id, node in graph.items():
        counter[0] += 1
        if counter[0] > MAX_NODES:
            raise ProcessGraphInvalidError(f"the process graph has more than {MAX_NODES} nodes")
        if not NODE_ID_RE.match(node_id):
            raise ProcessGraphInvalidError(
                f"node id {node_id[:100]!r} is invalid: use 1-100 letters, digits, '_-.~'"
            )
        if not isinstance(node, dict) or not isinstance(node.get("process_id"), str):
            raise ProcessGraphInvalidError(f"node {node_id!r} has no process_id")
        if not NODE_ID_RE.match(node["process_id"]):
            raise ProcessGraphInvalidError(
                f"node {node_id!r}: process_id {node['process_id'][:100]!r} is invalid"
            )
        args = node.get("arguments", {})
        if not isinstance(args, dict):
            raise ProcessGraphInvalidError(f"node {node_id!r}: arguments must be an object")
        if node.get("result") is True:
            results += 1
        for child in _children(args):
            check_graph(child, depth + 1, counter)
    if results != 1:
        raise ProcessGraphInvalidError(
            f'a process graph needs exactly one node with "result": true, found {results}'
        )


def result_node(graph: dict[str, Any]) -> str:
    return next(k for k, v in graph.items() if v.get("result") is True)


def walk_nodes(graph: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a graph and of its callbacks."""
    for node in graph.values():
        yield node
        for child in _children(node.get("arguments", {})):
            yield from walk_nodes(child)


def load_collections(graph: dict[str, Any]) -> list[dict[str, Any]]:
    """The arguments of every ``load_collection`` node (callbacks included)."""
    return [
        n.get("arguments", {})
        for n in walk_nodes(graph)
        if n.get("process_id") == "load_collection"
    ]


def _substitute(value: Any, params: dict[str, Any], node_map: dict[str, str]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"from_parameter"} and value["from_parameter"] in params:
            return copy.deepcopy(params[value["from_parameter"]])
        if set(value) == {"from_node"} and value["from_node"] in node_map:
            return {"from_node": node_map[value["from_node"]]}
        return {k: _substitute(v, params, node_map) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, params, node_map) for v in value]
    return value


UdpLookup = Callable[[str], dict[str, Any] | None]


def resolve_udps(
    graph: dict[str, Any], lookup: UdpLookup, known: frozenset[str] | set[str], depth: int = 0
) -> dict[str, Any]:
    """``graph`` with every user-defined process node inlined (its parameters substituted,
    its nodes prefixed with the calling node's id). ``known`` are the engine's processes:
    a user-defined process of the same name is only used with ``namespace: "user"``."""
    if depth > MAX_DEPTH:
        raise ProcessGraphInvalidError(
            f"user-defined processes call each other deeper than {MAX_DEPTH} levels (a cycle?)"
        )
    out: dict[str, Any] = {}
    renamed: dict[str, str] = {}
    for node_id, node in graph.items():
        node = dict(node)
        args = {
            k: _resolve_value(v, lookup, known, depth) for k, v in node.get("arguments", {}).items()
        }
        node["arguments"] = args
        pid = node["process_id"]
        namespace = node.get("namespace")
        udp = None
        if namespace == "user" or (namespace is None and pid not in known):
            udp = lookup(pid)
            if udp is None and namespace == "user":
                raise ProcessGraphInvalidError(f"user-defined process {pid!r} does not exist")
        if udp is None:
            out[node_id] = node
            continue
        inner = resolve_udps(udp["process_graph"], lookup, known, depth + 1)
        params = {
            p["name"]: p["default"]
            for p in udp.get("parameters") or []
            if isinstance(p, dict) and "default" in p
        }
        params.update(args)
        node_map = {k: f"{node_id}__{k}" for k in inner}
        inner_result = result_node(inner)
        for k, v in inner.items():
            v = _substitute(v, params, node_map)
            v.pop("result", None)
            out[node_map[k]] = v
        renamed[node_id] = node_map[inner_result]
        if node.get("result") is True:
            out[node_map[inner_result]]["result"] = True
    if renamed:
        out = {k: _substitute(v, {}, renamed) for k, v in out.items()}
    return out


def _resolve_value(
    value: Any, lookup: UdpLookup, known: frozenset[str] | set[str], depth: int
) -> Any:
    if isinstance(value, dict):
        if isinstance(value.get("process_graph"), dict):
            return {
                **value,
                "process_graph": resolve_udps(value["process_graph"], lookup, known, depth + 1),
            }
        return {k: _resolve_value(v, lookup, known, depth) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_value(v, lookup, known, depth) for v in value]
    return value
