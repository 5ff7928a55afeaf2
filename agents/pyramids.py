"""The single writer of a pyramid: merge a scene's staged blocks, rebuild the overviews,
and finish an item once every pyramid of its staging is built.

The overview agent calls :func:`build` for each ``BlocksIndexed``; the event's partition
key (the pyramid's top-level ancestor) gives one owner per pyramid across worker
processes, and :attr:`NodeServices.writers` one holder per key inside a process.

A staging that ``onboards`` an item (a Direct Import, or a lazy or external item a
request needs) is finished by the event that completes its round (the last of its
``pyramids``, counted in the effect ledger): a lazy or direct item is flagged
``gravitas:onboarded`` (version 2 of a Direct Import), an External Reference has its read
noted, and the request waiting for it (``requested_by``) is answered ``OnboardingDone``
on ``onboard.results``, where the parking agent resumes it.

Everything here repeats exactly on a replay: the merge is idempotent, parents are
rebuilt from their children, the finishing event and whether it flags are settled in the
ledger, and the flagged registration is settled per round (same version and
``registered_at``).
"""

from __future__ import annotations

from typing import Any

from gravitas.agents.base import Emit
from gravitas.agents.external import is_external, note_read
from gravitas.agents.onboarding import data_hrefs, managed_hrefs
from gravitas.agents.registration import MODE, ONBOARDED, register_item
from gravitas.agents.services import NodeServices
from gravitas.schemas.events import (
    BlocksIndexed,
    ItemRegistered,
    OnboardingDone,
    OverviewsUpdated,
)
from gravitas.storage.catalog.errors import ItemNotFoundError
from gravitas.storage.keys import to_epoch
from gravitas.storage.pixels.merge import merge_staged
from gravitas.storage.pixels.overviews import update_pyramid

__all__ = ["build", "finish", "flag_onboarded"]

AGENT = "overviews"


def build(services: NodeServices, event: BlocksIndexed) -> list[Emit]:
    """Merge, rebuild, and (the last pyramid of a round) finish the item it onboards."""
    ts = to_epoch(event.timestamp)
    with services.writers.hold(event.partition_key):
        info = services.layers.get(event.layer)
        merge_staged(
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
                blocks_updated=len(set(event.mortons)) + n,  # the same on a replay
                scene_id=event.scene_id,
            ),
        )
    ]
    if event.onboards is not None:
        out.extend(_complete(services, event))
    return out


def _round(collection: str, item_id: str, round_id: str) -> str:
    return f"onboard|{collection}|{item_id}|{round_id}|"


def _complete(services: NodeServices, event: BlocksIndexed) -> list[Emit]:
    """What the event that completes its round emits (nothing for the others)."""
    assert event.onboards is not None
    collection, item_id = event.onboards
    round_id = event.round_id or ""
    prefix = _round(collection, item_id, round_id)
    eid = str(event.event_id)
    services.ledger.record(eid, AGENT, prefix + event.partition_key)
    if len(services.ledger.subjects(AGENT, prefix)) < event.pyramids:
        return []
    # the first event to complete the round finishes it (and its replays again)
    if services.ledger.settle(prefix, AGENT, "completed by", eid) != eid:
        return []
    out = finish(services, collection, item_id, round_id)
    if event.requested_by is not None:
        done = OnboardingDone(
            scene_id=event.scene_id,
            collection=collection,
            item_id=item_id,
            requested_by=event.requested_by,
        )
        out.append(Emit("onboard.results", done))
    return out


def finish(services: NodeServices, collection: str, item_id: str, round_id: str) -> list[Emit]:
    """An item's pixels are merged: note the read of an External Reference, or flag a
    lazy or direct item onboarded (once per round: a round that finds it flagged by
    another leaves it; a replay repeats the first decision)."""
    try:
        item = services.catalog.get_item(collection, item_id)
    except ItemNotFoundError:
        return []  # retracted meanwhile: nothing to flag
    if is_external(item):  # stays external: its registration is not changed
        note_read(services, item, data_hrefs(item))
        return []
    flagged = bool(item["properties"].get(ONBOARDED))
    decided = services.ledger.settle(
        _round(collection, item_id, round_id), AGENT, "flag", "no" if flagged else "yes"
    )
    if decided != "yes":
        return []
    return [Emit("stac.registrations", flag_onboarded(services, item, round_id))]


def flag_onboarded(services: NodeServices, item: dict[str, Any], round_id: str) -> ItemRegistered:
    """Register ``item`` as onboarded, its lazy assets at their imported hrefs; settled
    per round, so a replay re-registers the same version and ``registered_at``."""
    doc = dict(item)
    props = dict(doc["properties"])
    collection, item_id = str(doc["collection"]), str(doc["id"])
    if props.get(MODE, "lazy") == "lazy":  # its data and mask now live in the object store
        doc["assets"] = managed_hrefs(services, item)
    doc["properties"] = {**props, ONBOARDED: True}
    return register_item(services, doc, source=f"onboarded|{collection}|{item_id}|{round_id}")
