"""Lazy Onboarding and on-demand reads of External References.

:func:`pending_items` finds the local items a request needs that are registered but not
indexed; :func:`gravitas.agents.parking.parking` is what the request emits instead of
waiting (one ``OnboardRequested`` per item and a ``RequestParked``). The onboarding agent answers
each ``OnboardRequested`` with ``OnboardingDone`` or ``OnboardingFailed`` on
``onboard.results``, where the parking agent resumes or fails the parked request. The
onboarding agent is keyed by scene id, so concurrent requests for one scene onboard it
once: the second finds it already done (and is told so).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from datetime import datetime
from typing import Any

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.agents.datamodes import import_assets, local_copy
from gravitas.agents.external import already_read, note_read
from gravitas.agents.hrefs import check_hrefs
from gravitas.agents.registration import LAYER_PREFIX, MODE, ONBOARDED, SCENE_ID, register_item
from gravitas.agents.scene_meta import BAND_NAMES, read_fields
from gravitas.agents.services import NodeServices
from gravitas.schemas.base import Event
from gravitas.schemas.events import (
    BlocksIndexed,
    OnboardingDone,
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
            if (layer is None or layer_matches(prefix, layer)) and not already_read(
                ctx.services, item
            ):
                found.append(item)
        token = page.next_token
        if not token:
            return found


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
        **read_fields(props),
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


def _data_keys(assets: dict[str, Any], props: dict[str, Any]) -> list[str]:
    """The data assets' keys, in the order of the scene's declared band names when it has
    them (``band_names``/``band_nodata`` are read per href in that order), else sorted."""
    keys = sorted(k for k, a in assets.items() if "data" in (a.get("roles") or ["data"]))
    keys = [k for k in keys if not _is_mask(k, assets[k])]
    declared = [str(n).lower() for n in props.get(BAND_NAMES) or []]
    if declared and sorted(declared) == sorted(keys):
        return declared
    return keys


def onboard(ctx: AgentContext, event: OnboardRequested) -> list[Emit]:
    """Import (lazy) or read in place (external), index, and re-register one item."""
    from gravitas.agents.ingest import index_scene

    services = ctx.services
    item = services.catalog.get_item(event.collection, event.item_id)
    props = item["properties"]
    if props.get(ONBOARDED) or already_read(services, item):
        return []  # a concurrent request already had it onboarded
    assets = item.get("assets", {})
    data_keys = _data_keys(assets, props)
    hrefs = [str(assets[k]["href"]) for k in data_keys]
    mode = props.get(MODE, "lazy")
    scene = _announcement(item, hrefs)
    check_hrefs(services, [*hrefs, *([scene.mask_href] if scene.mask_href else [])])
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
    if mode == "external":  # read in place: the registration stays as its owner made it
        note_read(services, item, hrefs)  # waiters find it with onboarded_among
        return [Emit("overviews.updated", u) for u in updated]
    item["assets"] = assets
    item["properties"] = {**props, ONBOARDED: True}
    registered = register_item(services, item)
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
        # A failure raises instead: the runner retries what is transient, then answers
        # with OnboardingFailed naming the cause (agents.answers).
        done = OnboardingDone(
            scene_id=event.scene_id,
            collection=event.collection,
            item_id=event.item_id,
            requested_by=event.requested_by,
        )
        return [*out, Emit("onboard.results", done)]
