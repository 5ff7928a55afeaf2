"""What an inbound payload becomes: a STAC item -> ``SceneAnnounced``, otherwise an
event of the target topic (its JSON with a ``type`` field, as ``/topics/{t}/events``).

The event id is derived from the source and the ``webhook-id`` (uuid5), so a redelivered
call always yields the same event. Every asset href of a STAC item must pass the node's
href policy (:mod:`gravitas.storage.hrefs`: an allow-listed prefix, root or the object
store) before anything is published; the agents check it again, addresses resolved,
before each read.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from gravitas.schemas.base import Event
from gravitas.schemas.codec import describe_validation_error, from_dict
from gravitas.schemas.errors import GravitasError
from gravitas.schemas.events import SceneAnnounced
from gravitas.schemas.webhooks import WebhookSource
from gravitas.storage.hrefs import HrefPolicy, HrefRefusedError
from gravitas.streams.webhooks.errors import WebhookRefusedError

NAMESPACE = uuid.UUID("8c1f3f0e-52a4-4a5b-9a57-6d0f2f7f3c11")
STAC_TOPIC = "scenes.new"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")


def event_id_for(node_id: str, source: str, webhook_id: str) -> uuid.UUID:
    """The id of the event a call becomes (the same for every redelivery)."""
    return uuid.uuid5(NAMESPACE, f"{node_id}\0{source}\0{webhook_id}")


def is_stac_item(payload: Any) -> bool:
    return (
        isinstance(payload, dict) and payload.get("type") == "Feature" and "stac_version" in payload
    )


def _refuse(message: str) -> WebhookRefusedError:
    return WebhookRefusedError(422, "payload", message)


def stac_scene(
    item: dict[str, Any], conf: WebhookSource, policy: HrefPolicy, **ids: Any
) -> SceneAnnounced:
    """The scene a STAC item announces: its ``data`` assets, each admitted by ``policy``."""
    item_id = item.get("id")
    if not isinstance(item_id, str) or not _ID.fullmatch(item_id):
        raise _refuse(f"STAC item id {str(item_id)[:60]!r} is not a valid scene id")
    props = item.get("properties")
    if not isinstance(props, dict):
        raise _refuse(f"STAC item {item_id}: properties must be an object")
    assets = item.get("assets")
    if not isinstance(assets, dict) or not assets:
        raise _refuse(f"STAC item {item_id} has no assets")
    hrefs: list[str] = []
    bands: list[str] = []
    for key, asset in assets.items():
        if not isinstance(asset, dict) or not isinstance(asset.get("href"), str):
            raise _refuse(f"STAC item {item_id}: asset {str(key)[:40]!r} has no href")
        roles = {str(r) for r in asset.get("roles") or []}
        if "data" not in roles:
            continue
        href = asset["href"]
        try:
            policy.check(href, resolve=False)  # addresses are checked again before each read
        except HrefRefusedError as exc:
            raise WebhookRefusedError(
                422, "href", f"STAC item {item_id}: asset {key!r}: {exc}"
            ) from None
        hrefs.append(href)
        bands.append(re.sub(r"[^a-z0-9_.-]+", "_", str(key).lower())[:60] or "band")
    if not hrefs:
        raise _refuse(f"STAC item {item_id} has no asset with role 'data'")
    collection = item.get("collection") or conf.collection
    if not isinstance(collection, str):
        raise _refuse(
            f"STAC item {item_id} names no collection and the source has no default "
            "'collection' configured"
        )
    when = props.get("datetime") or props.get("start_datetime")
    try:
        return SceneAnnounced(
            scene_id=item_id,
            collection=collection,
            hrefs=hrefs,
            band_names=bands,
            bbox=item.get("bbox"),
            datetime=when,
            mode=conf.mode,
            **ids,
        )
    except ValidationError as exc:
        raise _refuse(f"STAC item {item_id}: {describe_validation_error(exc)}") from None


def map_payload(
    payload: Any,
    topic: str,
    types: Sequence[type[Event]],
    conf: WebhookSource,
    policy: HrefPolicy,
    node_id: str,
    event_id: uuid.UUID,
) -> Event:
    """The event ``payload`` becomes on ``topic`` (422 :class:`WebhookRefusedError`)."""
    ids = {"event_id": event_id, "node_id": node_id}
    if is_stac_item(payload):
        if SceneAnnounced not in types:
            raise _refuse(f"a STAC item becomes a SceneAnnounced; topic {topic!r} carries none")
        return stac_scene(payload, conf, policy, **ids)
    if not isinstance(payload, dict):
        raise _refuse("the body must be a JSON object (a STAC item or an event)")
    try:
        return from_dict({**payload, **ids}, types)
    except GravitasError as exc:
        raise _refuse(str(exc)) from None
