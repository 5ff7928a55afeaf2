"""The single writer of a pyramid: merge a scene's staged blocks, rebuild the overviews,
and flag an onboarded item once every pyramid of its scene is built.

The overview agent calls :func:`build` for each ``BlocksIndexed``; the event's partition
key (the pyramid's top-level ancestor) gives one owner per pyramid across worker
processes, and :attr:`NodeServices.writers` one holder per key inside a process.
Everything here repeats exactly on a replay: the merge is idempotent, parents are
rebuilt from their children, and the onboarded registration is settled in the ledger.
"""

from __future__ import annotations

from gravitas.agents.base import Emit
from gravitas.agents.datamodes import asset_key
from gravitas.agents.registration import MODE, ONBOARDED, SCENE_ID, register_item
from gravitas.agents.services import NodeServices
from gravitas.schemas.events import BlocksIndexed, ItemRegistered, OverviewsUpdated
from gravitas.storage.keys import to_epoch
from gravitas.storage.pixels.merge import merge_staged
from gravitas.storage.pixels.overviews import update_pyramid

__all__ = ["build", "flag_onboarded"]

AGENT = "overviews"


def build(services: NodeServices, event: BlocksIndexed) -> list[Emit]:
    """Merge, rebuild, and (the scene's last pyramid) flag its item onboarded."""
    ts = to_epoch(event.timestamp)
    with services.writers.hold(event.partition_key):
        info = services.layers.get(event.layer)
        merged = merge_staged(
            services.block_store, event.layer, event.scene_id, event.level, ts, event.mortons
        )
        n = update_pyramid(services.block_store, info, ts, event.mortons)
    out = [
        Emit(
            "overviews.updated",
            OverviewsUpdated(
                layer=event.layer,
                timestamp=event.timestamp,
                base_level=event.level,
                top_level=info.top_level,
                blocks_updated=merged + n,
                scene_id=event.scene_id,
            ),
        )
    ]
    if event.onboards is not None:
        collection, item_id = event.onboards
        prefix = f"onboard|{collection}|{item_id}|"
        services.ledger.record(str(event.event_id), AGENT, prefix + event.partition_key)
        if len(services.ledger.subjects(AGENT, prefix)) >= event.pyramids:
            # the first event to complete the scene flags it (and its replays again);
            # events of a repeated onboarding find it done
            first = services.ledger.settle(prefix, AGENT, "completed by", str(event.event_id))
            if first == str(event.event_id):
                registered = flag_onboarded(services, collection, item_id)
                out.append(Emit("stac.registrations", registered))
            else:
                services.onboarded.post((collection, item_id))
    return out


def flag_onboarded(services: NodeServices, collection: str, item_id: str) -> ItemRegistered:
    """Register the item as onboarded (once: a repeat re-registers the same version) and
    wake the requests of this process that wait for it."""
    item = services.catalog.get_item(collection, item_id)
    props = item["properties"]
    if props.get(MODE, "lazy") == "lazy":  # its assets now live in the object store
        scene_id = str(props.get(SCENE_ID, item_id))
        for key, asset in item.get("assets", {}).items():
            if key == "data" or key.startswith("data_"):
                managed = services.object_store.href(asset_key(collection, scene_id, asset["href"]))
                item["assets"][key] = {**asset, "href": managed}
    item["properties"] = {**props, ONBOARDED: True}
    registered = register_item(services, item, source=f"onboarded|{collection}|{item_id}")
    services.onboarded.post((collection, item_id))
    return registered
