"""The ingest agent: ``scenes.new`` (mode ``direct``) -> blocks on the grid -> ``pixels.indexed``.

:func:`index_scene` is the whole job and is reusable: the onboarding agent calls it for
``lazy`` scenes on first request. Every href is admitted by the node's href policy
(:mod:`gravitas.agents.hrefs`) on arrival and again before it is read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.agents.hrefs import check_scene_hrefs, readable_path
from gravitas.agents.services import NodeServices
from gravitas.schemas.agent_answers import SceneAccepted
from gravitas.schemas.base import Event
from gravitas.schemas.errors import UnsupportedFormatError
from gravitas.schemas.events import BlocksIndexed, SceneAnnounced
from gravitas.storage.hrefs import parse_href
from gravitas.storage.pixels.index import FamilyWrite, prepare_scene, write_scene
from gravitas.storage.pixels.layers import top_level_of

__all__ = ["IngestAgent", "Onboard", "index_scene", "partition_key"]


@dataclass(frozen=True)
class Onboard:
    """The item a staging finishes once all its pyramids are built (see
    :mod:`gravitas.agents.pyramids`)."""

    item: tuple[str, str]
    """``(collection, item id)``."""
    round_id: str
    """The id of the event that staged the blocks (a scene or an onboarding request)."""
    requested_by: str | None = None
    """The request waiting for it (answered ``OnboardingDone``), if any."""


Progress = Callable[[str, float], None]


def _quiet(_msg: str, _fraction: float) -> None:
    """Default progress sink."""


def partition_key(layer: str, level: int, ts: int, morton: int) -> str:
    """Key of a block family: the family's ancestor at the layer's top overview level, so
    one overview writer owns each whole pyramid (no two writers share a parent)."""
    top = top_level_of(level)
    return f"{layer}/{ts}/{top}/{morton >> (2 * (level - top))}"


def gdal_env() -> AbstractContextManager[object]:
    """One rasterio/GDAL environment for a whole scene on this thread (a no-op inside one).

    Without it every ``rasterio.open``/``reproject`` creates and tears down a default
    environment, probing GDAL and PROJ data paths on disk each time (about 40 times per
    scene)."""
    from rasterio.env import Env, hasenv

    return nullcontext() if hasenv() else Env()


def indexed_events(
    scene_id: str, families: Sequence[FamilyWrite], onboard: Onboard | None = None
) -> list[BlocksIndexed]:
    """One :class:`BlocksIndexed` per pyramid the scene touched: the block families of a
    layer and time that share a top-level ancestor (one partition key) travel together,
    so their common ancestors are rebuilt once. The overview agent that owns the key
    merges the scene's staged blocks (the single writer of every block and pyramid);
    ``onboard`` names the item to finish when all pyramids are built, the round (the id
    of the event that staged them) and the request waiting for it, if any."""
    from datetime import UTC, datetime

    merged: dict[str, list[FamilyWrite]] = {}
    for fam in families:
        key = partition_key(fam.layer, fam.level, fam.timestamp, fam.mortons[0])
        merged.setdefault(key, []).append(fam)
    return [
        BlocksIndexed(
            partition_key=key,
            scene_id=scene_id,
            layer=fams[0].layer,
            level=fams[0].level,
            timestamp=datetime.fromtimestamp(fams[0].timestamp, UTC),
            mortons=sorted(m for f in fams for m in f.mortons),
            valid_pixels=sum(f.valid_pixels for f in fams),
            pyramids=len(merged),
            onboards=onboard.item if onboard else None,
            round_id=onboard.round_id if onboard else None,
            requested_by=onboard.requested_by if onboard else None,
        )
        for key, fams in sorted(merged.items())
    ]


def index_scene(
    event: SceneAnnounced,
    services: NodeServices,
    progress: Progress = _quiet,
    *,
    paths: Sequence[Path] | None = None,
    mask_path: Path | None = None,
    onboard: Onboard | None = None,
) -> list[BlocksIndexed]:
    """Read, warp and stage a scene; one :class:`BlocksIndexed` per pyramid touched.

    ``paths`` (and ``mask_path``) give local copies the node made itself (onboarding);
    otherwise the event's hrefs are resolved under the allowed roots. Raises InputError
    subclasses (corrupt, unsupported, unsafe, out of range) before anything is written.
    """
    with gdal_env():
        return _index_scene(
            event, services, progress, paths=paths, mask_path=mask_path, onboard=onboard
        )


def _index_scene(
    event: SceneAnnounced,
    services: NodeServices,
    progress: Progress,
    *,
    paths: Sequence[Path] | None,
    mask_path: Path | None,
    onboard: Onboard | None,
) -> list[BlocksIndexed]:
    if paths is None:
        paths = [_local(services, h) for h in event.hrefs]
        mask = _local(services, event.mask_href) if event.mask_href else None
    else:
        mask = mask_path
    plan = prepare_scene(
        event.scene_id,
        event.collection,
        paths,
        fmt=event.format,
        layer=event.layer,
        bands=event.bands,
        categorical=event.categorical,
        mask_path=mask,
        when=event.datetime,
        level=event.level,
        progress=lambda m, f: progress(m, f * 0.6),
        band_names=event.band_names,
        nodata=event.nodata,
        mask_convention=event.mask_convention,
        band_nodata=event.band_nodata,
    )
    families = write_scene(
        services.block_store,
        services.layers,
        plan,
        progress=lambda m, f: progress(m, 0.6 + 0.4 * f),
    )
    return indexed_events(event.scene_id, families, onboard)


def _local(services: NodeServices, href: str) -> Path:
    if parse_href(href).scheme != "file":
        raise UnsupportedFormatError(
            f"direct ingest reads local files; {href!r} is not one (register it with "
            "mode='external' or 'lazy' instead)"
        )
    return readable_path(services, href)


def accept_scene(event: SceneAnnounced, services: NodeServices) -> list[Emit]:
    """Apply a scene's data mode (see :mod:`gravitas.agents.datamodes`)."""
    from gravitas.agents.datamodes import import_assets, scene_item
    from gravitas.agents.registration import register_item

    check_scene_hrefs(services, event)  # every href of every mode, before anything is done
    indexed: list[BlocksIndexed] = []
    if event.mode == "direct":
        # the overview agent flags the item onboarded once its pyramids are built (a
        # request arriving before waits for that, as for a lazy item)
        with gdal_env():
            onboard = Onboard((event.collection, event.scene_id), str(event.event_id))
            indexed = index_scene(event, services, onboard=onboard)  # validates first
            managed = import_assets(services, event, list(event.hrefs))
            item = scene_item(services, event, managed, onboarded=not indexed, read_file=True)
        emits = [Emit("pixels.indexed", e) for e in indexed]
    elif event.mode == "external":
        local = urlparse(event.hrefs[0]).scheme in ("", "file")
        item = scene_item(services, event, list(event.hrefs), onboarded=False, read_file=local)
        emits = []
    else:
        item = scene_item(services, event, list(event.hrefs), onboarded=False, read_file=False)
        emits = []
    registered = register_item(services, item, str(event.event_id), event.occurred_at)
    out = [*emits, Emit("stac.registrations", registered)]
    if event.reply_topic:  # a workflow step waits for the item and the layers
        accepted = SceneAccepted(
            request_id=event.request_id or event.scene_id,
            scene_id=event.scene_id,
            collection=registered.collection,
            item_id=registered.item_id,
            version=registered.version,
            mode=event.mode,
            layers=sorted({e.layer for e in indexed}),
        )
        out.append(Emit(event.reply_topic, accepted))
    return out


class IngestAgent(Agent):
    """``scenes.new`` -> blocks (direct), registrations (every mode)."""

    name = "ingest"
    topic = "scenes.new"

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        assert isinstance(event, SceneAnnounced)
        out = await ctx.services.run_compute(accept_scene, event, ctx.services)
        ctx.log.info("scene %s accepted (%s): %d events", event.scene_id, event.mode, len(out))
        return out
