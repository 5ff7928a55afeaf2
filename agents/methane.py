"""The methane agent: ``methane.requests`` -> enhancement COG, STAC item, pixel layer, plumes.

For one :class:`MethaneRequested` it runs the matched filter on a local radiance scene
(EMIT L1B NetCDF or ENVI with a GLT) in a worker thread, publishing throttled
``Progress`` events, then stores what it made:

- the enhancement as a COG in the object store (``methane/<scene>/ch4_enhancement.tif``),
- a STAC item in collection ``methane-enhancement`` (processing extension, a
  ``derived_from`` link to the radiance, raster band in ``ppm m``), registered and
  published on ``stac.registrations``,
- the pixel layer ``ch4_enhancement`` (staged; the overview agent merges it and
  announces ``overviews.updated`` with the scene id). The item is registered not yet
  onboarded (``gravitas:onboarded`` false) and the overview agent flags it after the
  layer's last pyramid, as for a Direct Import: a datacube, search or featurize request
  that arrives before the merge parks on it and resumes on the onboarding event,
- the plumes as GeoJSON in the object store and in the vector layer ``ch4_plumes``.

It answers on ``methane.enhanced`` with one :class:`MethaneEnhanced` first, then one
:class:`PlumeDetected` per plume. Bad inputs raise InputError subclasses (dead-lettered).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.agents.methane_retrieval import (
    LAYER,
    UNIT,
    MethaneProduct,
    plume_features,
    retrieve_scene,
    write_cog,
)
from gravitas.agents.services import NodeServices
from gravitas.schemas.agent_answers import MethaneResult
from gravitas.schemas.base import Event
from gravitas.schemas.events import (
    BlocksIndexed,
    MethaneEnhanced,
    MethaneRequested,
    PlumeDetected,
    Progress,
    SceneAnnounced,
)

__all__ = ["COLLECTION", "PLUME_LAYER", "MethaneAgent", "ProgressThrottle", "run_methane"]

COLLECTION = "methane-enhancement"
"""STAC collection of the enhancement items."""
PLUME_LAYER = "ch4_plumes"
"""Vector layer holding the plumes of every scene this node retrieved."""
PREFIX = "methane"
"""Object-store prefix: ``methane/<scene_id>/...``."""

Publish = Callable[[Progress], None]


class ProgressThrottle:
    """Turns ``(stage, fraction)`` calls into Progress events: on every stage change and
    whenever the fraction advances by ``step`` (and at 1.0)."""

    def __init__(self, request_id: str, publish: Publish, step: float = 0.1) -> None:
        self.request_id = request_id
        self.publish = publish
        self.step = step
        self._stage = ""
        self._last = -1.0

    def __call__(self, stage: str, fraction: float) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        if stage == self._stage and fraction < 1.0 and fraction - self._last < self.step:
            return
        if stage == self._stage and fraction <= self._last:
            return
        self._stage, self._last = stage, fraction
        self.publish(
            Progress(
                request_id=self.request_id,
                stage=stage,
                fraction=fraction,
                message=f"{stage} {fraction:.0%}",
            )
        )


def _source_links(services: NodeServices, event: MethaneRequested, path: Path) -> list[Any]:
    """``derived_from`` links: the radiance file, and its STAC item if this node has one."""
    import pystac

    from gravitas.storage.catalog.base import SearchParams

    links = [
        pystac.Link(
            "derived_from", path.as_uri(), media_type="application/netcdf", title="radiance"
        )
    ]
    page = services.catalog.search(SearchParams(ids=(event.scene_id,), limit=1))
    for item in page.items:
        href = f"../../collections/{item['collection']}/items/{item['id']}"
        links.append(
            pystac.Link("derived_from", href, media_type="application/geo+json", title=item["id"])
        )
    return links


def _item(
    services: NodeServices,
    event: MethaneRequested,
    source: Path,
    product: MethaneProduct,
    cog: Path,
    cog_key: str,
    plumes_key: str,
    onboarded: bool,
) -> dict[str, Any]:
    from gravitas.agents.registration import LAYER_PREFIX, MODE, ONBOARDED, SCENE_ID
    from gravitas.storage.catalog.derived import add_processing
    from gravitas.storage.catalog.items import item_from_file

    props = {
        MODE: "direct",
        ONBOARDED: onboarded,  # False until the overview agent merged the layer
        LAYER_PREFIX: LAYER,
        SCENE_ID: event.scene_id,
        "methane:window_nm": list(event.window_nm),
        "methane:iterations": event.iterations,
        "methane:sparse": event.sparse,
        "methane:albedo_correction": event.albedo_correction,
        "methane:bands": product.bands,
        "methane:plume_count": len(product.plumes),
        "methane:background_mean_ppm_m": product.background_mean_ppm_m,
        "methane:max_ppm_m": product.max_ppm_m,
        # a measurement: settled per request, so a replay registers the same document
        "methane:retrieval_s": float(
            services.ledger.settle(
                str(event.event_id), "methane", "retrieval_s", str(round(product.retrieval_s, 3))
            )
        ),
    }
    item = item_from_file(
        cog, COLLECTION, enhancement_id(event), product.acquired, props, statistics=True
    )
    add_processing(
        item,
        lineage=(
            "mag1c-class matched filter (sparse l1 reweighting, albedo correction) with the "
            "CH4 unit absorption target from mag1c's LUT at the scene's band centres/FWHM; "
            "georeferenced through the scene's GLT"
        ),
        software={"gravitas": _version()},
        level="L2",
        facility=services.settings.node_id,
        when=event.occurred_at,  # the request's time: a replay writes the same item
    )
    for link in _source_links(services, event, source):
        item.add_link(link)
    doc = item.to_dict(include_self_link=False)
    asset = doc["assets"]["data"]
    asset["href"] = services.object_store.href(cog_key)
    asset["roles"] = ["data"]
    asset["title"] = "CH4 enhancement (ppm m)"
    for band in asset.get("raster:bands", []):
        band["unit"] = UNIT
    # not a raster band: onboarding reads the ``data``-role assets as the layer's bands
    doc["assets"]["plumes"] = {
        "href": services.object_store.href(plumes_key),
        "type": "application/geo+json",
        "roles": ["metadata"],
        "title": f"{len(product.plumes)} plume outline(s), EPSG:4326",
    }
    return doc


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gravitas")
    except PackageNotFoundError:
        return "0+unknown"


def _index(
    services: NodeServices, event: MethaneRequested, product: MethaneProduct, cog: Path
) -> list[BlocksIndexed]:
    """Stage the COG as layer ``ch4_enhancement``; the overview agent (the single writer
    of its blocks and pyramids) merges it, announces ``overviews.updated`` with the
    scene id and, after the last pyramid, flags the item onboarded (the round is this
    request's event, so a replay finishes nothing twice)."""
    from gravitas.agents.ingest import Onboard, index_scene

    announced = SceneAnnounced(
        scene_id=event.scene_id,
        collection=COLLECTION,
        hrefs=[cog.resolve().as_uri()],
        datetime=product.acquired,
        layer=LAYER,
    )
    onboard = Onboard((COLLECTION, enhancement_id(event)), str(event.event_id))
    return index_scene(announced, services, paths=[cog], onboard=onboard)


def enhancement_id(event: MethaneRequested) -> str:
    """The id of a scene's enhancement item."""
    return f"{event.scene_id}-ch4"


def _plume_layer(services: NodeServices) -> None:
    """Rebuild the vector layer ``ch4_plumes`` from every scene's plumes in the object store."""
    from gravitas.storage.vector.store import VectorStore

    features: list[dict[str, Any]] = []
    for key in services.object_store.list(f"{PREFIX}/"):
        if key.endswith("/plumes.geojson"):
            features.extend(json.loads(services.object_store.get_bytes(key))["features"])
    if not features:
        return
    with tempfile.TemporaryDirectory(prefix="gravitas-plumes-") as tmp:
        path = Path(tmp) / "ch4_plumes.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        with VectorStore.for_data_dir(services.data_dir) as store:
            store.add_layer(PLUME_LAYER, path, id_field="plume_id", replace=True)


def run_methane(
    services: NodeServices, event: MethaneRequested, progress: Callable[[str, float], None]
) -> list[Emit]:
    """The whole job (blocking): retrieve, store, register, index; returns the outputs."""
    from gravitas.agents.hrefs import readable_path
    from gravitas.agents.registration import register_item

    source = readable_path(services, event.href)
    product = retrieve_scene(
        source,
        window=event.window_nm,
        iterations=event.iterations,
        sparse=event.sparse,
        albedo=event.albedo_correction,
        threshold=event.plume_threshold_ppm_m,
        min_pixels=event.plume_min_pixels,
        progress=progress,
    )
    cog_key = f"{PREFIX}/{event.scene_id}/{LAYER}.tif"
    plumes_key = f"{PREFIX}/{event.scene_id}/plumes.geojson"
    fc = plume_features(product, event.scene_id)
    with tempfile.TemporaryDirectory(prefix="gravitas-methane-") as tmp:
        progress("writing", 0.0)
        cog = write_cog(product.grid, Path(tmp) / f"{LAYER}.tif", product.acquired)
        services.object_store.put_file(cog_key, cog)
        services.object_store.put_bytes(plumes_key, json.dumps(fc).encode())
        _plume_layer(services)
        progress("indexing", 0.0)
        updated = _index(services, event, product, cog)
        item = _item(
            services, event, source, product, cog, cog_key, plumes_key, onboarded=not updated
        )
    registered = register_item(services, item, str(event.event_id), event.occurred_at)
    progress("indexing", 1.0)
    enhanced = MethaneEnhanced(
        request_id=event.request_id,
        scene_id=event.scene_id,
        cog_href=services.object_store.href(cog_key),
        item_id=str(item["id"]),
        layer=LAYER,
        background_mean_ppm_m=product.background_mean_ppm_m,
        max_ppm_m=product.max_ppm_m,
        plume_count=len(product.plumes),
    )
    plumes = [
        PlumeDetected(
            request_id=event.request_id,
            scene_id=event.scene_id,
            plume_id=str(f["properties"]["plume_id"]),
            geometry=f["geometry"],
            max_ppm_m=float(f["properties"]["max_ppm_m"]),
            mean_ppm_m=float(f["properties"]["mean_ppm_m"]),
            area_m2=float(f["properties"]["area_m2"]),
            ime_kg=float(f["properties"]["ime_kg"]),
        )
        for f in fc["features"]
    ]
    out = [
        Emit("methane.enhanced", enhanced),
        *(Emit("methane.enhanced", p) for p in plumes),
        *(Emit("pixels.indexed", u) for u in updated),
        Emit("stac.registrations", registered),
    ]
    if event.reply_topic:  # a workflow step waits: one answer with the plumes
        result = methane_result(enhanced, plumes, COLLECTION)
        size = source.stat().st_size if source.is_file() else 0
        out.append(Emit(event.reply_topic, result.model_copy(update={"bytes_in": size})))
    return out


def methane_result(
    enhanced: MethaneEnhanced, plumes: Sequence[PlumeDetected], collection: str
) -> MethaneResult:
    """The answer to a request with a ``reply_topic``: the item and the plumes."""
    keys = ("plume_id", "max_ppm_m", "mean_ppm_m", "area_m2", "ime_kg")
    return MethaneResult(
        request_id=enhanced.request_id,
        scene_id=enhanced.scene_id,
        item_id=enhanced.item_id,
        collection=collection,
        cog_href=enhanced.cog_href,
        layer=enhanced.layer,
        background_mean_ppm_m=enhanced.background_mean_ppm_m,
        max_ppm_m=enhanced.max_ppm_m,
        plumes=[{k: getattr(p, k) for k in keys} for p in plumes],
    )


class MethaneAgent(Agent):
    """``methane.requests`` -> enhancement layer, STAC item and plumes on ``methane.enhanced``."""

    name = "methane"
    topic = "methane.requests"

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        assert isinstance(event, MethaneRequested)
        loop = asyncio.get_running_loop()
        pending: list[Future[None]] = []

        def publish(p: Progress) -> None:  # called from the worker thread
            pending.append(asyncio.run_coroutine_threadsafe(_emit(ctx, p), loop))

        throttle = ProgressThrottle(event.request_id, publish)
        try:
            out = await ctx.services.run_compute(run_methane, ctx.services, event, throttle)
        finally:
            for fut in pending:
                await asyncio.wrap_future(fut)
        ctx.log.info("methane %s: %d output events", event.scene_id, len(out))
        return out


async def _emit(ctx: AgentContext, progress: Progress) -> None:
    """A coroutine (not just an awaitable) for ``run_coroutine_threadsafe``."""
    await ctx.emit("progress", progress)
