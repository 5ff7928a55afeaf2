"""Federated placement of python module steps: run each step on the node that holds
most of its input bytes, and send only the step (its JSON inputs) and its answer.

A step's input data are the STAC items its inputs reference (any object with
``collection`` and ``item_id``). Where they live is read from this node's catalog, whose
foreign items came from signed registrations of configured peers (``gravitas:node``);
anything else a step's inputs say (a ``node`` or ``href`` field an earlier step
answered) is never used to place it. The workflow agent decides the node when it first
requests the instance (stored with its emits, so a replay places it the same), and the
module agent forwards a step placed on another node to that peer's edge (signed; the
peer's ``api_url`` from the settings, never from a message).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from gravitas.agents.services import NodeServices
from gravitas.schemas.errors import GravitasError, TransportError
from gravitas.schemas.workflows import StepFinished, StepRequested
from gravitas.storage.catalog.base import NODE_PROPERTY, SearchParams

MAX_REFS = 1000


@dataclass(frozen=True)
class Placement:
    """Where a step runs, and the bytes of its input items per node that holds them."""

    node: str
    held: dict[str, int] = field(default_factory=dict)
    items: int = 0


def item_refs(value: Any) -> Iterator[tuple[str, str]]:
    """Every (collection, item id) referenced in a step's inputs."""
    if isinstance(value, dict):
        c, i = value.get("collection"), value.get("item_id")
        if isinstance(c, str) and isinstance(i, str):
            yield c, i
            return
        for v in value.values():
            yield from item_refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from item_refs(v)


def item_bytes(item: dict[str, Any]) -> int:
    """The bytes of an item's assets as its registration states them (``file:size``)."""
    total = 0
    for asset in (item.get("assets") or {}).values():
        size = asset.get("file:size") if isinstance(asset, dict) else None
        if isinstance(size, int) and size > 0:
            total += size
    return total


def place(services: NodeServices, inputs: dict[str, Any]) -> Placement:
    """The node holding most of the input bytes (this node on a tie or with no input
    items); only this node and its configured peers are candidates."""
    me = services.settings.node_id
    refs = sorted(set(item_refs(inputs)))[:MAX_REFS]
    if not refs:
        return Placement(me)
    page = services.catalog.search(
        SearchParams(
            ids=tuple(sorted({i for _, i in refs})),
            collections=tuple(sorted({c for c, _ in refs})),
            federated=True,
            limit=min(len(refs) * 4, 10000),
        )
    )
    wanted = set(refs)
    found = [i for i in page.items if (str(i.get("collection")), str(i.get("id"))) in wanted]
    return tally(services, found)


def tally(services: NodeServices, items: list[dict[str, Any]]) -> Placement:
    """The placement of a step whose input data are ``items`` (catalog items): the
    configured node holding most of their bytes (this node on a tie or with none)."""
    me = services.settings.node_id
    held: dict[str, int] = {}
    count: dict[str, int] = {}
    for item in items:
        owner = str(item.get("properties", {}).get(NODE_PROPERTY) or me)
        if owner != me and owner not in services.settings.peers:
            continue  # not a node this one trusts: never placed there
        held[owner] = held.get(owner, 0) + item_bytes(item)
        count[owner] = count.get(owner, 0) + 1
    if not held:
        return Placement(me)
    best = max(held, key=lambda n: (held[n], count[n], n == me, n))
    return Placement(best, dict(sorted(held.items())), sum(count.values()))


def json_bytes(value: Any) -> int:
    """The size of a value as it travels (JSON)."""
    return len(orjson.dumps(value))


def run_on_peer(services: NodeServices, event: StepRequested) -> StepFinished:
    """Run ``event`` on the peer it is placed on (blocking); a refusal fails the step."""
    from gravitas.agents.routing import forward

    try:
        reply = forward(services, event.node, "modules.requests", event, [StepFinished])
    except TransportError:
        raise  # transient: retried by the runner's policy
    except GravitasError as exc:
        return StepFinished(
            run_id=event.run_id,
            step_id=event.step_id,
            module=event.module,
            status="failed",
            error=f"node {event.node}: {exc}"[:2000],
            served_by=services.settings.node_id,
        )
    if not isinstance(reply, StepFinished) or reply.step_id != event.step_id:
        return StepFinished(
            run_id=event.run_id,
            step_id=event.step_id,
            module=event.module,
            status="failed",
            error=f"node {event.node} answered another step",
            served_by=services.settings.node_id,
        )
    return reply


def misplaced(event: StepRequested, me: str) -> StepFinished:
    """The refusal of a step another node placed on a third node (never forwarded on)."""
    return StepFinished(
        run_id=event.run_id,
        step_id=event.step_id,
        module=event.module,
        status="failed",
        error=f"step placed on node {event.node!r} was sent to node {me!r} by "
        f"{event.node_id!r}; a node runs only the steps placed on it",
        served_by=me,
    )
