"""Large featurize answers by reference: per-pixel rasters become Cloud-Optimized
GeoTIFFs and models skops files in the object store (``features/<request id>/``), one
STAC item in collection ``features`` registers them with their provenance (expression,
layers, node), and the :class:`FeatureResult` carries their hrefs and the item id.

A replayed request writes the same bytes under the same keys, and its registration is
settled in the effect ledger like every other (:func:`register_item` with the request's
event id): the replay registers the item again with the same ``gravitas:version`` and
``gravitas:registered_at`` (the request's ``occurred_at``) and publishes the same
registration, so a crash between the catalog write and the publish loses nothing. A new
request (another event id) whose outputs are the bytes already registered changes nothing.
"""

from __future__ import annotations

import hashlib
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from gravitas.agents.featurize import Computed
from gravitas.agents.registration import SETTLED_BY, register_item
from gravitas.agents.services import NodeServices
from gravitas.schemas.events import FeatureResult, Featurize, ItemRegistered
from gravitas.storage.catalog.errors import ItemNotFoundError

COLLECTION = "features"
PREFIX = "features/"
COG = "image/tiff; application=geotiff; profile=cloud-optimized"
SKOPS = "application/octet-stream; profile=skops"


def cog_bytes(raster: xr.DataArray) -> bytes:
    """A ``(band, lat, lon)`` float raster as COG bytes (EPSG:4326, NaN nodata, band
    descriptions = band names)."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    arr = raster.astype(np.float32).transpose("band", "lat", "lon")
    arr = arr.rio.set_spatial_dims(x_dim="lon", y_dim="lat").rio.write_crs("EPSG:4326")
    arr = arr.rio.write_nodata(np.float32(np.nan), encoded=False)
    names = [str(b) for b in arr["band"].values]
    arr = arr.assign_coords(band=np.arange(1, len(names) + 1))
    arr.attrs = {"long_name": tuple(names)}
    with tempfile.TemporaryDirectory(prefix="gravitas-feat-") as tmp:
        path = Path(tmp) / "out.tif"
        arr.rio.to_raster(path, driver="COG", compress="DEFLATE")
        return path.read_bytes()


def _collection() -> dict[str, Any]:
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": COLLECTION,
        "description": "Per-pixel featurize answers and trained models, with provenance",
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
            "temporal": {"interval": [[None, None]]},
        },
        "links": [],
    }


def store_outputs(
    services: NodeServices, event: Featurize, computed: Computed
) -> tuple[FeatureResult, list[ItemRegistered]]:
    """Write ``computed``'s rasters and files, register them; the result references them."""
    result = computed.result
    if not computed.rasters and not computed.files:
        return result, []
    blobs: dict[str, tuple[bytes, str]] = {
        f"{name}.tif": (cog_bytes(r), COG) for name, r in computed.rasters.items()
    }
    blobs.update({name: (data, SKOPS) for name, data in computed.files.items()})
    assets: dict[str, dict[str, Any]] = {}
    outputs: dict[str, str] = {}
    for fname, (data, media) in sorted(blobs.items()):
        key = f"{PREFIX}{event.request_id}/{fname}"
        services.object_store.put_bytes(key, data)
        name = fname.rsplit(".", 1)[0]
        href = services.object_store.href(key)
        outputs[name] = href
        assets[name] = {
            "href": href,
            "type": media,
            "roles": ["data"],
            "file:size": len(data),
            "file:checksum": "1220" + hashlib.sha256(data).hexdigest(),
        }
        raster = computed.rasters.get(name)
        if raster is not None:
            assets[name]["gravitas:bands"] = [str(b) for b in raster["band"].values]
    regs = _register(services, event, assets)
    update = {"outputs": outputs, "item_id": event.request_id}
    return result.model_copy(update=update), regs


def _register(
    services: NodeServices, event: Featurize, assets: dict[str, dict[str, Any]]
) -> list[ItemRegistered]:
    w, s, e, n = event.bbox
    props = {
        "datetime": None,
        "start_datetime": event.time.start.astimezone(UTC).isoformat(),
        "end_datetime": event.time.end.astimezone(UTC).isoformat(),
        "gravitas:expression": event.expression,
        "gravitas:layers": dict(event.layers),
        "gravitas:reducers": list(event.reducers),
        "gravitas:over": event.over,
        "gravitas:request_id": event.request_id,
        "gravitas:computed_by": services.settings.node_id,
    }
    if event.model is not None:
        props["gravitas:model"] = event.model.model_dump()
    source = str(event.event_id)
    replay = services.ledger.settled(source, SETTLED_BY, f"{COLLECTION}/{event.request_id}")
    try:
        old = services.catalog.get_item(COLLECTION, event.request_id)
    except ItemNotFoundError:
        old = None
    if replay is None and old is not None and _same(old.get("assets", {}), assets):
        return []  # another request that made the bytes registered already
    services.catalog.upsert_collection(_collection())
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "id": event.request_id,
        "collection": COLLECTION,
        "bbox": [w, s, e, n],
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
        },
        "properties": props,
        "links": [],
        "assets": assets,
    }
    return [register_item(services, item, source, event.occurred_at)]


def _same(old: dict[str, Any], new: dict[str, dict[str, Any]]) -> bool:
    return set(old) == set(new) and all(
        old[k].get("file:checksum") == v["file:checksum"] for k, v in new.items()
    )


def stored_at(now: datetime | None = None) -> str:
    """An ISO time stamp (UTC)."""
    return (now or datetime.now(UTC)).isoformat()
