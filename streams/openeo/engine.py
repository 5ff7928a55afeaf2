"""The adapter to the process-graph engine (``gravitas.agents.graphs``).

The engine's interface: ``execute(process_graph, services, *, progress=None,
scheduler=None) -> GraphResult(data, media_type, filename, format)``,
``validate(process_graph) -> list[GraphProblem]``, ``processes() -> list[dict]``,
``file_formats() -> dict`` and error classes carrying the openEO ``code`` and HTTP
status. This module turns the engine's errors into :class:`OpenEOError` s and answers
``FeatureUnsupported`` (501) while no engine is installed on the node.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol

from gravitas.agents.services import NodeServices
from gravitas.streams.openeo.errors import NotSupportedError, OpenEOError

ENGINE_MODULE = "gravitas.agents.graphs"

DEFAULT_FORMATS: dict[str, Any] = {"input": {}, "output": {}}


class Result(Protocol):
    data: bytes
    media_type: str
    filename: str
    format: str


def _engine() -> ModuleType | None:
    try:
        return importlib.import_module(ENGINE_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name and ENGINE_MODULE.startswith(exc.name):
            return None
        raise


def available() -> bool:
    """Whether the node has the process-graph engine."""
    return _engine() is not None


def _require() -> ModuleType:
    mod = _engine()
    if mod is None:
        raise NotSupportedError(
            "this node has no process-graph engine (gravitas.agents.graphs); "
            "processing is not available"
        )
    return mod


def as_openeo_error(exc: Exception) -> OpenEOError:
    """An engine error as an openEO error (its ``code`` and status)."""
    code = getattr(exc, "code", None) or getattr(exc, "openeo_code", None)
    status = getattr(exc, "status", None) or getattr(exc, "http_status", None)
    status = getattr(exc, "status_code", None) if status is None else status
    if not isinstance(code, str):
        code = "ProcessGraphInvalid"
    if not isinstance(status, int):
        status = 400
    return OpenEOError(str(exc) or type(exc).__name__, code=code, status=status)


def _engine_errors(mod: ModuleType) -> tuple[type[BaseException], ...]:
    base = getattr(mod, "GraphError", None) or getattr(mod, "ProcessGraphError", None)
    if isinstance(base, type) and issubclass(base, BaseException):
        return (base,)
    return ()


@functools.cache
def processes() -> list[dict[str, Any]]:
    """The openEO specs of the processes the engine executes (none without an engine;
    read once per process)."""
    mod = _engine()
    return list(mod.processes()) if mod is not None else []


@functools.cache
def claimed() -> list[dict[str, Any]]:
    """The specs listed in ``GET /processes``: the engine's processes that pass openEO's
    process tests (the others still execute, unadvertised)."""
    mod = _engine()
    if mod is None:
        return []
    return list(getattr(mod, "claimed_processes", mod.processes)())


@functools.cache
def process_ids() -> frozenset[str]:
    return frozenset(str(p.get("id")) for p in processes())


def file_formats() -> dict[str, Any]:
    """The engine's input and output formats."""
    mod = _engine()
    return dict(mod.file_formats()) if mod is not None else dict(DEFAULT_FORMATS)


def validate(process_graph: dict[str, Any]) -> list[dict[str, Any]]:
    """Problems of a graph as openEO ``errors`` entries ``{code, message}``."""
    mod = _require()
    try:
        problems = mod.validate(process_graph)
    except _engine_errors(mod) as exc:
        err = as_openeo_error(exc if isinstance(exc, Exception) else Exception(str(exc)))
        return [{"code": err.code, "message": err.message}]
    out = []
    for p in problems:
        code = getattr(p, "code", None) or "ProcessGraphInvalid"
        message = getattr(p, "message", None) or str(p)
        out.append({"code": str(code), "message": str(message)})
    return out


def read_result(result: Result) -> bytes:
    """A result's bytes (a directory result, Zarr, as one ZIP)."""
    read = getattr(result, "read", None)
    return bytes(read()) if callable(read) else result.data


def packed(result: Result) -> tuple[str, str]:
    """The file name and media type a result travels under as one file."""
    return (
        str(getattr(result, "packed_filename", result.filename)),
        str(getattr(result, "packed_media_type", result.media_type)),
    )


def close_result(result: Result) -> None:
    """Remove a result's files on disk (results held in memory have none)."""
    close = getattr(result, "close", None)
    if callable(close):
        close()


def execute(
    process_graph: dict[str, Any],
    services: NodeServices,
    progress: Callable[[float, str], None] | None = None,
) -> Result:
    """Run a graph (blocking: call it on the compute pool)."""
    mod = _require()
    try:
        result: Result = mod.execute(process_graph, services, progress=progress)
    except OpenEOError:
        raise
    except _engine_errors(mod) as exc:
        raise as_openeo_error(exc if isinstance(exc, Exception) else Exception(str(exc))) from exc
    except Exception as exc:
        if getattr(exc, "code", None) is not None:
            raise as_openeo_error(exc) from exc
        raise
    return result
