"""The three data modes of a scene: Direct Import, External Reference, Lazy Onboarding.

- *direct*: the files are copied into the node's object store, indexed, and registered
  with the managed hrefs.
- *external*: registered with the original hrefs (a file under an allowed root, or an
  http(s) URL under an allowed prefix); never copied; indexed from the source when a
  request first needs it. The registration never changes on a read: it stays
  ``external`` and not onboarded (:mod:`gravitas.storage.external_reads` notes the read).
- *lazy*: registered from the announcement alone (bbox and datetime required); the first
  request that needs it has it imported and indexed by the onboarding agent.

Every href of every mode is checked by the href policy (:mod:`gravitas.agents.hrefs`)
when the announcement arrives and again right before each read.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from gravitas.agents.hrefs import href_policy, readable
from gravitas.agents.registration import LAYER_PREFIX, MODE, ONBOARDED, SCENE_ID
from gravitas.agents.scene_meta import scene_properties
from gravitas.agents.services import NodeServices
from gravitas.schemas.errors import InputError
from gravitas.schemas.events import SceneAnnounced
from gravitas.storage.catalog.collections import STAC_VERSION
from gravitas.storage.hrefs import download


def layer_prefix(event: SceneAnnounced) -> str:
    """The prefix of the pixel layers a scene becomes (as ingest names them)."""
    return (event.layer or event.collection.replace(":", "_")).lower()


def asset_key(event_collection: str, scene_id: str, href: str) -> str:
    """Object-store key of an imported asset."""
    name = Path(unquote(urlparse(href).path)).name or hashlib.sha256(href.encode()).hexdigest()
    return f"assets/{event_collection}/{scene_id}/{name}"


@contextmanager
def local_copy(services: NodeServices, href: str) -> Iterator[Path]:
    """A local file with the content of ``href`` (a temp download for http(s)/s3),
    admitted by the href policy right before it is read."""
    checked = readable(services, href)
    if checked.path is not None:
        yield checked.path
        return
    with tempfile.TemporaryDirectory(prefix="gravitas-fetch-") as tmp:
        target = Path(tmp) / (Path(checked.href.path).name or "asset")
        if checked.key is not None:
            services.object_store.download(checked.key, target)
        else:
            download(href_policy(services), href, target)
        yield target


def import_assets(services: NodeServices, event: SceneAnnounced, hrefs: list[str]) -> list[str]:
    """Copy assets into the object store; returns their managed hrefs (in order)."""
    managed = []
    for href in hrefs:
        key = asset_key(event.collection, event.scene_id, href)
        with local_copy(services, href) as path:
            services.object_store.put_file(key, path)
        managed.append(services.object_store.href(key))
    return managed


MASK_KEY = "mask"
"""Asset key of a scene's quality mask (role ``mask``)."""


def scene_item(
    services: NodeServices,
    event: SceneAnnounced,
    hrefs: list[str],
    *,
    onboarded: bool,
    read_file: bool,
) -> dict[str, Any]:
    """A STAC item for a scene: from its files when they can be read here (band
    metadata: eo:bands, raster:bands with nodata, data type, scale/offset, statistics),
    else from the announcement (bbox and datetime). One asset per file, keyed by its
    band code (``b04``, ``b3``) with the ``data`` role; the mask as ``mask`` with the
    ``mask`` role. ``hrefs`` are the data hrefs to register (managed or original)."""
    from gravitas.storage.catalog.bands import asset_keys

    props: dict[str, Any] = {
        MODE: event.mode,
        ONBOARDED: onboarded,
        LAYER_PREFIX: layer_prefix(event),
        SCENE_ID: event.scene_id,
        **scene_properties(event),
        **event.properties,
    }
    declared = _declared_bands(event)
    keys = declared or asset_keys([unquote(urlparse(h).path) or h for h in event.hrefs])
    mask_key = MASK_KEY if MASK_KEY not in keys else f"{MASK_KEY}_qa"
    if read_file:
        doc = _item_from_files(services, event, props, keys, mask_key)
    else:
        doc = _item_from_announcement(event, props)
    doc["properties"]["gravitas:registered_at"] = datetime.now(UTC).isoformat()
    assets: dict[str, Any] = doc.setdefault("assets", {})
    for key, href in zip(keys, hrefs, strict=True):
        asset = assets.setdefault(key, {"title": f"Band {key}"})
        asset["href"] = href
        asset.setdefault("roles", ["data"])
    if event.mask_href:
        mask = assets.setdefault(mask_key, {"title": "Quality mask"})
        # a Direct Import owns its mask from the start, as its data (copied with it)
        mask["href"] = _managed_mask(services, event)
        mask["roles"] = ["mask"]
    return doc


def _item_from_files(
    services: NodeServices,
    event: SceneAnnounced,
    props: dict[str, Any],
    keys: list[str],
    mask_key: str,
) -> dict[str, Any]:
    from gravitas.storage.catalog.items import add_file_asset, item_from_file

    with ExitStack() as stack:
        paths = [stack.enter_context(local_copy(services, h)) for h in event.hrefs]
        item = item_from_file(
            paths[0],
            event.collection,
            event.scene_id,
            event.datetime,
            props,
            asset_key=keys[0],
            checksum=False,  # the asset is rebuilt below, checksum and all
        )
        item.assets.pop(keys[0])  # rebuilt below with statistics, like the other bands
        nodata = _declared_nodata(event)
        for path, key, (given, fallback) in zip(paths, keys, nodata, strict=True):
            add_file_asset(item, path, key, statistics=True, nodata=given, default_nodata=fallback)
        if event.mask_href:
            mask = stack.enter_context(local_copy(services, event.mask_href))
            add_file_asset(item, mask, mask_key, roles=("mask",))
    return item.to_dict(include_self_link=False)


def _declared_bands(event: SceneAnnounced) -> list[str] | None:
    """Asset keys the announcement names (``band_names``, one per href), lowercase."""
    names: list[str] | None = getattr(event, "band_names", None)
    return [n.lower() for n in names] if names else None


def _declared_nodata(event: SceneAnnounced) -> list[tuple[float | None, float | None]]:
    """Per href: the announced nodata (``band_nodata`` overrides the file; ``nodata``
    fills in for a file without one)."""
    per_file: list[float | None] = getattr(event, "band_nodata", None) or [None] * len(event.hrefs)
    fallback: float | None = getattr(event, "nodata", None)
    return [(value, fallback) for value in per_file]


def _item_from_announcement(event: SceneAnnounced, props: dict[str, Any]) -> dict[str, Any]:
    if event.bbox is None or event.datetime is None:
        raise InputError(
            f"scene {event.scene_id}: a {event.mode} announcement needs bbox and datetime "
            "(they are registered before the file is read)"
        )
    w, s, e, n = event.bbox
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "id": event.scene_id,
        "collection": event.collection,
        "bbox": [w, s, e, n],
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
        },
        "properties": {"datetime": event.datetime.isoformat().replace("+00:00", "Z"), **props},
        "links": [],
        "assets": {},
    }


def _managed_mask(services: NodeServices, event: SceneAnnounced) -> str | None:
    """The mask of a scene this node imports (direct mode), copied into the object store."""
    if event.mask_href is None:
        return None
    if event.mode != "direct":
        return event.mask_href
    return import_assets(services, event, [event.mask_href])[0]
