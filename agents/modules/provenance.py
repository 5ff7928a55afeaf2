"""The provenance a workflow step writes on every STAC item it publishes.

Per item: the STAC processing extension (``processing:lineage`` naming the workflow,
run, step and module, ``processing:software`` with the workflow's and the module's
versions, ``processing:facility`` = the node that ran the step, ``processing:datetime`` =
when the step was requested, so a replay writes the same), the same facts as
``gravitas:*`` properties for search, and one ``derived_from`` link per input item.
Registration goes through :func:`gravitas.agents.registration.register_item` keyed by the
step id, so a replayed or re-run step registers the same version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gravitas.agents.modules.context import ModuleContext
from gravitas.storage.catalog.derived import PROCESSING_SCHEMA

WORKFLOW = "gravitas:workflow"
RUN_ID = "gravitas:run_id"
STEP_ID = "gravitas:step_id"
MODULES = "gravitas:modules"
INPUT_ITEMS = "gravitas:input_items"
NODE = "gravitas:ran_on"


def gravitas_version() -> str:
    """The installed gravitas version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gravitas")
    except PackageNotFoundError:
        return "0+unknown"


def add_provenance(
    item: dict[str, Any], ctx: ModuleContext, inputs: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """``item`` (a STAC item dict) with the step's provenance; ``inputs`` are the
    (collection, id) of the items it was derived from."""
    doc = dict(item)
    props = dict(doc.get("properties") or {})
    module_name, _, module_version = ctx.module.partition("@")
    wf_name, _, wf_version = ctx.workflow.partition("@")
    software = {"gravitas": gravitas_version()}
    if module_name:
        software[module_name] = module_version
    if wf_name:
        software[f"workflow:{wf_name}"] = wf_version
    props["processing:lineage"] = (
        f"workflow {ctx.workflow or '(none)'} run {ctx.run_id or '(none)'}, step "
        f"{ctx.step_id}: module {ctx.module or '(unknown)'} on node {ctx.node_id}"
    )
    props["processing:software"] = software
    props["processing:facility"] = ctx.node_id
    if ctx.requested_at is not None:
        props["processing:datetime"] = ctx.requested_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    props[WORKFLOW] = ctx.workflow
    props[RUN_ID] = ctx.run_id
    props[STEP_ID] = ctx.step_id
    props[MODULES] = [ctx.module] if ctx.module else []
    props[INPUT_ITEMS] = [f"{c}/{i}" for c, i in inputs]
    props[NODE] = ctx.node_id
    doc["properties"] = props
    exts = list(doc.get("stac_extensions") or [])
    if PROCESSING_SCHEMA not in exts:
        exts.append(PROCESSING_SCHEMA)
    doc["stac_extensions"] = exts
    links = [dict(link) for link in doc.get("links") or [] if link.get("rel") != "derived_from"]
    for collection, item_id in inputs:
        links.append(
            {
                "rel": "derived_from",
                "href": f"../../collections/{collection}/items/{item_id}",
                "type": "application/geo+json",
                "title": item_id,
            }
        )
    if doc.get("collection") and not any(link.get("rel") == "collection" for link in links):
        links.append(
            {"rel": "collection", "href": "../collection.json", "type": "application/json"}
        )
    doc["links"] = links
    return doc


def publish_item(
    ctx: ModuleContext, item: dict[str, Any], inputs: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """Register ``item`` with the step's provenance on the node (the module agent
    publishes the registration); returns the item as stored."""
    from gravitas.agents.registration import register_item

    doc = add_provenance(item, ctx, inputs)
    if ctx.services is None:
        return doc
    registered = register_item(ctx.services, doc, f"{ctx.step_id}:{doc['id']}", ctx.requested_at)
    ctx.registrations.append(registered)
    return doc
