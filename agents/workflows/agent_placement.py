"""Federated placement of agent-module steps (methane, datacube): a step whose input data
another configured node holds runs on that node's own agent.

Where a step's data are is read from this node's catalog only (foreign items came from
signed registrations of configured peers, ``gravitas:node``), never from what the step's
inputs claim:

- ``methane``: the item whose id is the step's ``scene_id`` and one of whose assets is
  the step's ``href`` (a scene another node registered names that node's file);
- ``datacube``: the items of the modalities' collections in the step's bbox and time;
- any other agent step (train coordinates its own federation; register, pixel-search and
  featurize route by layer themselves) stays here.

An agent reads its inputs from its own node, so an agent step moves only when one other
node holds all of its input items (a step with data here, or split across nodes, runs
here as before); the bytes per node are recorded either way.
"""

from __future__ import annotations

from typing import Any

from gravitas.agents.modules.placement import Placement, tally
from gravitas.agents.services import NodeServices
from gravitas.schemas.errors import GravitasError, StorageError, TransportError
from gravitas.storage.catalog.base import SearchParams

PLACED_AGENTS = frozenset({"methane", "datacube"})
"""Agent modules whose steps may run on the node holding their inputs."""
MAX_ITEMS = 1000


def _local(path: str) -> str:
    return path.removeprefix("file://")


def _methane_items(services: NodeServices, inputs: dict[str, Any]) -> list[dict[str, Any]]:
    scene, href = inputs.get("scene_id"), inputs.get("href")
    if not isinstance(scene, str) or not isinstance(href, str):
        return []
    page = services.catalog.search(SearchParams(ids=(scene,), federated=True, limit=100))
    want = _local(href)
    return [
        item
        for item in page.items
        if any(
            isinstance(a, dict) and _local(str(a.get("href", ""))) == want
            for a in (item.get("assets") or {}).values()
        )
    ]


def _datacube_items(services: NodeServices, inputs: dict[str, Any]) -> list[dict[str, Any]]:
    mods = inputs.get("modalities")
    bbox, start, end = inputs.get("bbox"), inputs.get("start"), inputs.get("end")
    if not isinstance(mods, list) or not isinstance(bbox, list) or len(bbox) != 4:
        return []
    cols = sorted({m["collection"] for m in mods if isinstance(m, dict) and m.get("collection")})
    if not cols or not all(isinstance(c, str) for c in cols):
        return []
    page = services.catalog.search(
        SearchParams(
            collections=tuple(cols),
            bbox=tuple(float(v) for v in bbox),
            datetime=f"{start or '..'}/{end or '..'}",
            federated=True,
            limit=MAX_ITEMS,
        )
    )
    return list(page.items)


def place_agent_step(services: NodeServices, module: str, inputs: dict[str, Any]) -> Placement:
    """Where an agent-module step (``name@version``) runs, and its input bytes per node."""
    me = services.settings.node_id
    name = module.partition("@")[0]
    if name not in PLACED_AGENTS:
        return Placement(me)
    try:
        items = (_methane_items if name == "methane" else _datacube_items)(services, inputs)
    except (StorageError, TransportError):
        raise  # transient: retried by the runner's policy
    except (TypeError, ValueError, GravitasError):  # malformed: the adapter refuses them
        return Placement(me)
    where = tally(services, items)
    if where.node != me and set(where.held) != {where.node}:
        return Placement(me, where.held, where.items)  # data here too: the agent runs here
    return where
