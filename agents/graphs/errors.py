"""openEO errors of the process-graph engine: each carries the spec's ``code`` and status.

Every failure of :func:`gravitas.agents.graphs.execute` / ``validate`` is one of these
classes; the message names the node id and the argument when one is at fault, so the
openEO edge can answer ``{"code": exc.code, "message": str(exc)}`` with ``exc.status``.
"""

from __future__ import annotations

from gravitas.schemas.errors import RequestError


class GraphError(RequestError):
    """Base class: a process graph that cannot be validated or executed as asked."""

    code = "Internal"
    status = 500

    def __init__(self, message: str, *, node: str | None = None, argument: str | None = None):
        self.node = node
        self.argument = argument
        where = ""
        if node is not None:
            where = f"node {node!r}" + (f", argument {argument!r}" if argument else "") + ": "
        super().__init__(where + message)

    def to_openeo(self) -> dict[str, str]:
        """The openEO error body (without ``id``, which the edge assigns)."""
        return {"code": self.code, "message": str(self)}


class ProcessGraphMissing(GraphError):
    """No process graph was given (empty or not an object)."""

    code = "ProcessGraphMissing"
    status = 400


class ProcessGraphInvalid(GraphError):
    """Malformed structure: no/several result nodes, cycles, dangling references."""

    code = "ProcessGraphInvalid"
    status = 400


class ProcessUnsupported(GraphError):
    """A process id the engine does not execute."""

    code = "ProcessUnsupported"
    status = 400


class ProcessParameterMissing(GraphError):
    """A required argument of a process is missing."""

    code = "ProcessParameterMissing"
    status = 400


class ProcessParameterUnsupported(GraphError):
    """An argument the process does not define."""

    code = "ProcessParameterUnsupported"
    status = 400


class ProcessArgumentInvalid(GraphError):
    """An argument of the wrong type or out of range."""

    code = "ProcessArgumentInvalid"
    status = 400


class CollectionNotFound(GraphError):
    """``load_collection`` names a collection this node does not have."""

    code = "CollectionNotFound"
    status = 404


class BandNotFound(ProcessArgumentInvalid):
    """``load_collection`` names a band its collection does not have."""


class FormatUnsupported(GraphError):
    """``save_result`` asks for an output format the engine does not write."""

    code = "FormatUnsupported"
    status = 400


class NoDataForUpdate(GraphError):
    """The selection holds no data (no time step, or every pixel is nodata)."""

    code = "NoDataForUpdate"
    status = 400


class ResourceLimitExceeded(GraphError):
    """A graph over the memory or time limit (``GRAVITAS_GRAPH_MAX_BYTES`` / ``_SECONDS``)."""

    code = "ResourceLimitExceeded"
    status = 400


class ProcessFailed(GraphError):
    """A process raised while computing (the message names the node)."""

    code = "Internal"
    status = 500
