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
from contextlib import contextmanager
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


def scene_item(
    services: NodeServices,
    event: SceneAnnounced,
    hrefs: list[str],
    *,
    onboarded: bool,
    read_file: bool,
) -> dict[str, Any]:
    """A STAC item for a scene: from its first file when it can be read here, else from
    the announcement (bbox and datetime), with one asset per href."""
    props: dict[str, Any] = {
        MODE: event.mode,
        ONBOARDED: onboarded,
        LAYER_PREFIX: layer_prefix(event),
        SCENE_ID: event.scene_id,
        **scene_properties(event),
        **event.properties,
    }
    if read_file:
        from gravitas.storage.catalog.items import item_from_file

        with local_copy(services, event.hrefs[0]) as path:
            item = item_from_file(path, event.collection, event.scene_id, event.datetime, props)
        doc = item.to_dict(include_self_link=False)
    else:
        if event.bbox is None or event.datetime is None:
            raise InputError(
                f"scene {event.scene_id}: a {event.mode} announcement needs bbox and datetime "
                "(they are registered before the file is read)"
            )
        w, s, e, n = event.bbox
        doc = {
            "type": "Feature",
            "stac_version": "1.1.0",
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
    doc["properties"]["gravitas:registered_at"] = datetime.now(UTC).isoformat()
    data_assets = {k: v for k, v in doc.get("assets", {}).items() if k != "data"}
    for i, href in enumerate(hrefs):
        key = "data" if i == 0 else f"data_{i}"
        asset = dict(doc.get("assets", {}).get(key) or {})
        asset["href"] = href
        asset.setdefault("roles", ["data"])
        data_assets[key] = asset
    if event.mask_href:
        data_assets["mask"] = {"href": event.mask_href, "roles": ["quality"]}
    doc["assets"] = data_assets
    return doc
