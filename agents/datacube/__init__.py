"""The steps of the harmonize agent: match, filter, retrieve, process, patch, split, write.

Each module does one step on plain values so the agent (:mod:`gravitas.agents.harmonize`)
only sequences them, reports progress and turns failures into replies.
"""

from gravitas.agents.datacube.assemble import Assembled, assemble
from gravitas.agents.datacube.match import MatchResult, match_request
from gravitas.agents.datacube.plan import StepFailed, grid_level
from gravitas.agents.datacube.retrieve import Retrieved, retrieve
from gravitas.agents.datacube.write import Written, write_datacube

__all__ = [
    "Assembled",
    "MatchResult",
    "Retrieved",
    "StepFailed",
    "Written",
    "assemble",
    "grid_level",
    "match_request",
    "retrieve",
    "write_datacube",
]
