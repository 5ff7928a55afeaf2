"""The overview agent: ``pixels.indexed`` -> parents rebuilt from children -> ``overviews.updated``.

Events are keyed by the family's top-level ancestor (:func:`gravitas.agents.ingest.partition_key`),
so a single writer updates each pyramid; a replay rewrites identical bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.schemas.base import Event
from gravitas.schemas.events import BlocksIndexed, OverviewsUpdated
from gravitas.storage.keys import to_epoch
from gravitas.storage.pixels.layers import LayerInfo
from gravitas.storage.pixels.overviews import update_pyramid


class OverviewAgent(Agent):
    """Keeps per-block statistics and coarse arrays of every level up to the top."""

    name = "overviews"
    topic = "pixels.indexed"

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        assert isinstance(event, BlocksIndexed)
        services = ctx.services

        def update() -> tuple[LayerInfo, int]:  # the registry is SQLite: off the event loop
            info = services.layers.get(event.layer)
            ts = to_epoch(event.timestamp)
            return info, update_pyramid(services.block_store, info, ts, event.mortons)

        info, n = await services.run_compute(update)
        done = OverviewsUpdated(
            layer=event.layer,
            timestamp=event.timestamp,
            base_level=event.level,
            top_level=info.top_level,
            blocks_updated=n,
        )
        return [Emit("overviews.updated", done)]
