"""Lazy Onboarding and on-demand reads of External References.

:func:`pending_items` finds the local items a request needs that are registered but not
indexed; :func:`gravitas.agents.parking.parking` is what the request emits instead of
waiting (one ``OnboardRequested`` per item and a ``RequestParked``). The onboarding agent
imports (lazy) or reads in place (external) and stages each item's blocks; the overview
agent, the single writer of every block and pyramid, merges them and, after the item's
last pyramid, flags it (:mod:`gravitas.agents.pyramids`) and answers ``OnboardingDone``
on ``onboard.results``, where the parking agent resumes the parked request. A failure
is answered with ``OnboardingFailed`` naming the cause. The onboarding agent is keyed by
scene id; a request for an item that is already onboarded is told so at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from datetime import datetime
from typing import Any

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.agents.datamodes import asset_key, import_assets, local_copy
from gravitas.agents.external import already_read
from gravitas.agents.hrefs import check_hrefs
from gravitas.agents.registration import LAYER_PREFIX, MODE, ONBOARDED, SCENE_ID
from gravitas.agents.scene_meta import BAND_NAMES, read_fields
from gravitas.agents.services import NodeServices
from gravitas.schemas.base import Event
from gravitas.schemas.events import OnboardingDone, OnboardRequested, Progress, SceneAnnounced
from gravitas.storage.catalog.base import SearchParams


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


def managed_hrefs(services: NodeServices, item: dict[str, Any]) -> dict[str, Any]:
    """``item``'s assets with its data and mask at the hrefs onboarding imported them to
    (:func:`~gravitas.agents.datamodes.asset_key`, as :func:`import_assets` names them)."""
    assets = {k: dict(v) for k, v in (item.get("assets") or {}).items()}
    props = item["properties"]
    scene_id = str(props.get(SCENE_ID, item["id"]))
    for key in [*_data_keys(assets, props), *(k for k, a in assets.items() if _is_mask(k, a))]:
        href = str(assets[key]["href"])
        assets[key]["href"] = services.object_store.href(
            asset_key(str(item["collection"]), scene_id, href)
        )
    return assets


def data_hrefs(item: dict[str, Any]) -> list[str]:
    """The hrefs of ``item``'s data assets, in band order."""
    assets = item.get("assets") or {}
    return [str(assets[k]["href"]) for k in _data_keys(assets, item["properties"])]


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
    """Import (lazy) or read in place (external) and stage one item's blocks.

    The overview agent merges the staged blocks, rebuilds the pyramids and, after the
    last one, flags the item (lazy, direct) or notes the read (external) and answers
    ``OnboardingDone`` for ``event.requested_by``. An item already onboarded, or one
    without pixels on the grid, is answered here at once. Every step repeats exactly on
    a replay (assets are copied under keys of their names, staged blocks are merged
    order-free and idempotently, the flag is settled in the ledger)."""
    from gravitas.agents.ingest import Onboard, index_scene
    from gravitas.agents.pyramids import finish

    services = ctx.services
    item = services.catalog.get_item(event.collection, event.item_id)
    props = item["properties"]
    if props.get(ONBOARDED) or already_read(services, item):
        return [Emit("onboard.results", _done(event))]  # a concurrent request had it done
    assets = item.get("assets", {})
    data_keys = _data_keys(assets, props)
    hrefs = [str(assets[k]["href"]) for k in data_keys]
    mode = props.get(MODE, "lazy")
    scene = _announcement(item, hrefs)
    check_hrefs(services, [*hrefs, *([scene.mask_href] if scene.mask_href else [])])
    if mode == "lazy":  # copied under keys of their names: a repeat writes the same bytes
        hrefs = import_assets(services, scene, hrefs)
        _import_mask(services, scene, dict(assets))  # the flag points the item at them
    with ExitStack() as stack:
        paths = [stack.enter_context(local_copy(services, h)) for h in hrefs]
        mask = scene.mask_href
        mask_path = stack.enter_context(local_copy(services, mask)) if mask else None
        indexed = index_scene(
            scene,
            services,
            paths=paths,
            mask_path=mask_path,
            onboard=Onboard(
                (event.collection, event.item_id), str(event.event_id), event.requested_by
            ),
        )
    if indexed:  # the overview agent finishes the item after its last pyramid
        return [Emit("pixels.indexed", e) for e in indexed]
    # no pixels on the grid: nothing to merge, finished here
    finished = finish(services, event.collection, event.item_id, str(event.event_id))
    return [*finished, Emit("onboard.results", _done(event))]


def _done(event: OnboardRequested) -> OnboardingDone:
    return OnboardingDone(
        scene_id=event.scene_id,
        collection=event.collection,
        item_id=event.item_id,
        requested_by=event.requested_by,
    )


class OnboardingAgent(Agent):
    """``onboard.requests`` -> staged pixels (or ``OnboardingDone`` when nothing is left)."""

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
        ctx.log.info("staged %s/%s", event.collection, event.item_id)
        # A failure raises instead: the runner retries what is transient, then answers
        # with OnboardingFailed naming the cause (agents.answers).
        return out
