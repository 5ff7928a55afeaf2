"""Lazy Onboarding and on-demand reads of External References.

:func:`ensure_onboarded` is called by any agent whose request needs pixels of a layer:
it finds the local items of that layer that are registered but not indexed, emits one
``OnboardRequested`` per item, and waits (with progress events) until the onboarding
agent has indexed them. The onboarding agent is keyed by scene id, so concurrent
requests for one scene onboard it once: the second finds it already done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import datetime
from typing import Any

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.agents.datamodes import import_assets, local_copy
from gravitas.agents.registration import LAYER_PREFIX, MODE, ONBOARDED, SCENE_ID, register_item
from gravitas.agents.services import NodeServices
from gravitas.schemas.base import Event
from gravitas.schemas.errors import RequestError
from gravitas.schemas.events import (
    BlocksIndexed,
    OnboardRequested,
    OverviewsUpdated,
    Progress,
    SceneAnnounced,
)
from gravitas.storage.catalog.base import SearchParams
from gravitas.storage.keys import to_epoch
from gravitas.storage.pixels.overviews import update_pyramid


def layer_matches(prefix: str, layer: str) -> bool:
    """True if ``layer`` is the layer ``prefix`` or one of its bands (``prefix_band``)."""
    return layer == prefix or layer.startswith(prefix + "_")


def pending_items(
    ctx: AgentContext,
    layer: str | None,
    bbox: tuple[float, float, float, float],
    start: datetime,
    end: datetime,
    collection: str | None = None,
) -> list[dict[str, Any]]:
    """Local items that would provide ``layer`` (or ``collection``) here but are not indexed."""
    catalog = ctx.services.catalog
    interval = (
        f"{start.isoformat().replace('+00:00', 'Z')}/{end.isoformat().replace('+00:00', 'Z')}"
    )
    token: str | None = None
    found: list[dict[str, Any]] = []
    while True:
        page = catalog.search(
            SearchParams(
                bbox=bbox,
                datetime=interval,
                collections=(collection,) if collection else None,
                filter={"op": "=", "args": [{"property": ONBOARDED}, False]},
                filter_lang="cql2-json",
                limit=500,
                token=token,
            )
        )
        for item in page.items:
            props = item.get("properties", {})
            prefix = str(props.get(LAYER_PREFIX, ""))
            if layer is None or layer_matches(prefix, layer):
                found.append(item)
        token = page.next_token
        if not token:
            return found


async def ensure_onboarded(
    ctx: AgentContext,
    request_id: str,
    layer: str | None,
    bbox: tuple[float, float, float, float],
    start: datetime,
    end: datetime,
    collection: str | None = None,
    timeout_s: float = 600.0,
) -> int:
    """Onboard what a request needs; returns how many items had to be onboarded."""
    items = await asyncio.to_thread(pending_items, ctx, layer, bbox, start, end, collection)
    if not items:
        return 0
    with ctx.services.onboarded.watch() as notices:  # opened before anything is asked
        for item in items:
            await ctx.emit(
                "onboard.requests",
                OnboardRequested(
                    scene_id=str(item["properties"].get(SCENE_ID, item["id"])),
                    collection=str(item["collection"]),
                    item_id=str(item["id"]),
                    requested_by=request_id,
                ),
            )
        await ctx.emit(
            "progress",
            Progress(
                request_id=request_id,
                stage="onboarding",
                fraction=0.0,
                message=f"onboarding {len(items)} item(s)",
            ),
        )
        waiting = {(str(i["collection"]), str(i["id"])) for i in items}
        await _wait_onboarded(ctx, request_id, waiting, notices, timeout_s)
    return len(items)


async def _wait_onboarded(
    ctx: AgentContext,
    request_id: str,
    waiting: set[tuple[str, str]],
    notices: asyncio.Queue[tuple[str, str]],
    timeout_s: float,
) -> None:
    """Until every item of ``waiting`` is onboarded: wake on this process's notices, and
    poll the catalog (work done by other worker processes) when none came for a while."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    total = len(waiting)
    pause = 0.05  # between catalog polls without notices; backs off to 0.5 s
    done = await asyncio.to_thread(onboarded_among, ctx.services, waiting)
    while True:
        for key in sorted(done & waiting):
            waiting.discard(key)
            await ctx.emit(
                "progress",
                Progress(
                    request_id=request_id,
                    stage="onboarding",
                    fraction=(total - len(waiting)) / total,
                    message=f"{key[1]} ready",
                ),
            )
        if not waiting:
            return
        if loop.time() > deadline:
            raise RequestError(
                f"onboarding of {sorted(k[1] for k in waiting)} did not finish within "
                f"{timeout_s}s; see the deadletter topic for the reason"
            )
        try:
            done = {await asyncio.wait_for(notices.get(), pause)}
            while not notices.empty():
                done.add(notices.get_nowait())
        except TimeoutError:
            done = await asyncio.to_thread(onboarded_among, ctx.services, waiting)
            pause = min(0.5, pause * 1.5)


def onboarded_among(services: NodeServices, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The ``(collection, item id)`` of ``keys`` whose items are onboarded now (one
    catalog search per collection, however many items are waited for)."""
    by_collection: dict[str, list[str]] = {}
    for collection, item_id in keys:
        by_collection.setdefault(collection, []).append(item_id)
    done: set[tuple[str, str]] = set()
    for collection, ids in by_collection.items():
        ids.sort()
        for start in range(0, len(ids), 1000):
            chunk = tuple(ids[start : start + 1000])
            page = services.catalog.search(
                SearchParams(collections=(collection,), ids=chunk, limit=len(chunk))
            )
            done |= {
                (collection, str(f["id"]))
                for f in page.items
                if f.get("properties", {}).get(ONBOARDED)
            }
    return done


def _announcement(item: dict[str, Any], hrefs: list[str]) -> SceneAnnounced:
    props = item["properties"]
    return SceneAnnounced(
        scene_id=str(props.get(SCENE_ID, item["id"])),
        collection=str(item["collection"]),
        hrefs=hrefs,
        layer=str(props[LAYER_PREFIX]),
        mode="direct",
        datetime=props.get("datetime"),
        mask_href=next(
            (str(a["href"]) for k, a in item.get("assets", {}).items() if _is_mask(k, a)), None
        ),
    )


def _import_mask(services: NodeServices, scene: SceneAnnounced, assets: dict[str, Any]) -> None:
    """A lazily registered scene's mask is imported with its data (the node owns both)."""
    for key, asset in assets.items():
        if _is_mask(key, asset):
            (managed,) = import_assets(services, scene, [str(asset["href"])])
            assets[key] = {**asset, "href": managed}


def _is_mask(key: str, asset: dict[str, Any]) -> bool:
    """The scene's quality mask: the ``mask`` role (or, from older items, the key)."""
    return "mask" in (asset.get("roles") or []) or key == "mask"


def onboard(ctx: AgentContext, event: OnboardRequested) -> list[Emit]:
    """Import (lazy) or read in place (external), index, and re-register one item."""
    from gravitas.agents.ingest import index_scene

    services = ctx.services
    item = services.catalog.get_item(event.collection, event.item_id)
    props = item["properties"]
    if props.get(ONBOARDED):
        services.onboarded.post((event.collection, event.item_id))
        return []  # a concurrent request already had it onboarded
    assets = item.get("assets", {})
    data_keys = sorted(k for k, a in assets.items() if "data" in (a.get("roles") or ["data"]))
    data_keys = [k for k in data_keys if not _is_mask(k, assets[k])]
    hrefs = [str(assets[k]["href"]) for k in data_keys]
    mode = props.get(MODE, "lazy")
    scene = _announcement(item, hrefs)
    if mode == "lazy":
        managed = import_assets(services, scene, hrefs)
        for key, href in zip(data_keys, managed, strict=True):
            assets[key] = {**assets[key], "href": href}
        hrefs = managed
        _import_mask(services, scene, assets)
    with ExitStack() as stack:
        paths = [stack.enter_context(local_copy(services, h)) for h in hrefs]
        mask = scene.mask_href
        mask_path = stack.enter_context(local_copy(services, mask)) if mask else None
        indexed = index_scene(scene, services, paths=paths, mask_path=mask_path)
    # Build the overviews now: the waiting request searches through them right after.
    updated = [_overviews(services, e) for e in indexed]
    item["assets"] = assets
    item["properties"] = {**props, ONBOARDED: True}
    registered = register_item(services, item)
    services.onboarded.post((event.collection, event.item_id))
    return [Emit("overviews.updated", u) for u in updated] + [
        Emit("stac.registrations", registered)
    ]


def _overviews(services: NodeServices, event: BlocksIndexed) -> OverviewsUpdated:
    info = services.layers.get(event.layer)
    n = update_pyramid(services.block_store, info, to_epoch(event.timestamp), event.mortons)
    return OverviewsUpdated(
        layer=event.layer,
        timestamp=event.timestamp,
        base_level=event.level,
        top_level=info.top_level,
        blocks_updated=n,
    )


class OnboardingAgent(Agent):
    """``onboard.requests`` -> indexed pixels and an updated registration."""

    name = "onboarding"
    topic = "onboard.requests"

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        assert isinstance(event, OnboardRequested)
        await ctx.emit(
            "progress",
            Progress(
                request_id=event.requested_by,
                stage="onboarding",
                fraction=0.0,
                message=f"importing and indexing {event.item_id}",
            ),
        )
        out = await ctx.services.run_compute(onboard, ctx, event)
        ctx.log.info("onboarded %s/%s", event.collection, event.item_id)
        return out
