"""The three data modes of a scene: Direct Import, External Reference, Lazy Onboarding.

- *direct*: the files are copied into the node's object store, indexed, and registered
  with the managed hrefs.
- *external*: registered with the original hrefs (a file under an allowed root, or an
  http(s) URL under an allowed prefix); never copied; indexed from the source when a
  request first needs it.
- *lazy*: registered from the announcement alone (bbox and datetime required); the first
  request that needs it has it imported and indexed by the onboarding agent.
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

import httpx

from gravitas.agents.registration import LAYER_PREFIX, MODE, ONBOARDED, SCENE_ID
from gravitas.agents.services import NodeServices
from gravitas.schemas.errors import InputError, UnsafePathError
from gravitas.schemas.events import SceneAnnounced

MAX_DOWNLOAD_BYTES = 2 * 1024**3


def layer_prefix(event: SceneAnnounced) -> str:
    """The prefix of the pixel layers a scene becomes (as ingest names them)."""
    return (event.layer or event.collection.replace(":", "_")).lower()


def check_external_href(services: NodeServices, href: str) -> None:
    """An external href must be a file under an allowed root or an allow-listed URL."""
    parsed = urlparse(href)
    if parsed.scheme in ("http", "https"):
        prefixes = services.settings.allowed_url_prefixes
        if not any(href.startswith(p) for p in prefixes):
            raise UnsafePathError(
                f"external href {href!r} is not under an allowed URL prefix "
                f"{list(prefixes)}; add its prefix to GRAVITAS_ALLOWED_URL_PREFIXES"
            )
        return
    from gravitas.agents.ingest import allowed_roots, resolve_href

    resolve_href(href, allowed_roots(services))


def asset_key(event_collection: str, scene_id: str, href: str) -> str:
    """Object-store key of an imported asset."""
    name = Path(unquote(urlparse(href).path)).name or hashlib.sha256(href.encode()).hexdigest()
    return f"assets/{event_collection}/{scene_id}/{name}"


@contextmanager
def local_copy(services: NodeServices, href: str) -> Iterator[Path]:
    """A local file with the content of ``href`` (a temp download for http(s)/s3)."""
    parsed = urlparse(href)
    if parsed.scheme in ("", "file"):
        yield Path(unquote(parsed.path if parsed.scheme else href))
        return
    with tempfile.TemporaryDirectory(prefix="gravitas-fetch-") as tmp:
        target = Path(tmp) / (Path(parsed.path).name or "asset")
        if parsed.scheme in ("http", "https"):
            _download(href, target)
        elif parsed.scheme == "s3":
            key = parsed.path.lstrip("/")
            loc = getattr(services.object_store, "loc", None)  # S3ObjectStore: bucket/prefix
            prefix = str(getattr(loc, "prefix", "") or "")
            if prefix and key.startswith(prefix.strip("/") + "/"):
                key = key[len(prefix.strip("/")) + 1 :]
            services.object_store.download(key, target)
        else:
            raise InputError(f"cannot read href {href!r}: unsupported scheme {parsed.scheme!r}")
        yield target


def _download(url: str, target: Path) -> None:
    size = 0
    with httpx.stream("GET", url, timeout=60, follow_redirects=False) as resp:
        if resp.status_code != 200:
            raise InputError(f"GET {url} answered {resp.status_code}; check the href")
        with target.open("wb") as fh:
            for chunk in resp.iter_bytes(1 << 20):
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise InputError(f"{url} is larger than {MAX_DOWNLOAD_BYTES} bytes")
                fh.write(chunk)


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
