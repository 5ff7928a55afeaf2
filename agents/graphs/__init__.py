"""The one process-graph engine of gravitas (openEO requests, featurize, workflows).

- :func:`execute` (``process_graph, services, *, progress=None, scheduler=None``) ->
  :class:`GraphResult` (``data`` bytes, ``media_type``, ``filename``, ``format``,
  ``path`` None: results are held in memory).
- :func:`validate` (``process_graph``) -> ``list[GraphProblem]`` (node id + argument).
- :func:`processes` -> openEO process specs of exactly the processes executed.
- :func:`claimed_processes` -> those of them claimed in openEO's ``GET /processes``
  (the ones passing openEO's process tests; :mod:`gravitas.agents.graphs.claims`).
- :func:`file_formats` -> the openEO ``/file_formats`` body.
- Errors: :mod:`gravitas.agents.graphs.errors` (each has ``code`` and ``status``).
See docs/compute.md.
"""

from gravitas.agents.graphs.claims import claimed_processes
from gravitas.agents.graphs.engine import execute
from gravitas.agents.graphs.errors import (
    BandNotFound,
    CollectionNotFound,
    FormatUnsupported,
    GraphError,
    NoDataForUpdate,
    ProcessArgumentInvalid,
    ProcessFailed,
    ProcessGraphInvalid,
    ProcessGraphMissing,
    ProcessParameterMissing,
    ProcessParameterUnsupported,
    ProcessUnsupported,
    ResourceLimitExceeded,
)
from gravitas.agents.graphs.registry import processes
from gravitas.agents.graphs.result import GraphProblem, GraphResult
from gravitas.agents.graphs.save import file_formats
from gravitas.agents.graphs.validate import validate

__all__ = [
    "BandNotFound",
    "CollectionNotFound",
    "FormatUnsupported",
    "GraphError",
    "GraphProblem",
    "GraphResult",
    "NoDataForUpdate",
    "ProcessArgumentInvalid",
    "ProcessFailed",
    "ProcessGraphInvalid",
    "ProcessGraphMissing",
    "ProcessParameterMissing",
    "ProcessParameterUnsupported",
    "ProcessUnsupported",
    "ResourceLimitExceeded",
    "claimed_processes",
    "execute",
    "file_formats",
    "processes",
    "validate",
]
