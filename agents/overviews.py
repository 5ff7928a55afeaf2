"""The overview agent: ``pixels.indexed`` -> staged blocks merged, parents rebuilt ->
``overviews.updated``.

Events are keyed by the family's top-level ancestor (:func:`gravitas.agents.ingest.partition_key`),
so a single writer owns every block and parent of a pyramid (:mod:`gravitas.agents.pyramids`);
a replay rewrites identical bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.agents.pyramids import build
from gravitas.schemas.base import Event
from gravitas.schemas.events import BlocksIndexed


class OverviewAgent(Agent):
    """Keeps the layer's blocks, per-block statistics and coarse arrays up to the top."""

    name = "overviews"
    topic = "pixels.indexed"

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        assert isinstance(event, BlocksIndexed)
        return await ctx.services.run_compute(build, ctx.services, event)
