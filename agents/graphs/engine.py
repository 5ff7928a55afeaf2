"""``execute``: parse a process graph with openeo-pg-parser-networkx and run it with
openeo-processes-dask's implementations plus gravitas's ``load_collection``,
``save_result`` and ``aggregate_spatial``, under the configured dask scheduler.

Nodes only build a lazy dask graph; the pixels are read when ``save_result`` (or the
engine, for a graph without it) computes the result, chunk by chunk.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import dask
import xarray as xr
from dask.callbacks import Callback

from gravitas.agents.graphs import collection, overviews
from gravitas.agents.graphs import save as save_mod
from gravitas.agents.graphs.aggregate import aggregate
from gravitas.agents.graphs.errors import (
    GraphError,
    NoDataForUpdate,
    ProcessArgumentInvalid,
    ProcessGraphInvalid,
    ProcessParameterMissing,
    ResourceLimitExceeded,
)
from gravitas.agents.graphs.overrides import OVERRIDES
from gravitas.agents.graphs.registry import implementations, spec_view
from gravitas.agents.graphs.result import GraphResult
from gravitas.agents.graphs.scheduler import check_spec, is_distributed, scheduler_get
from gravitas.agents.graphs.spatial import SpatialReducers
from gravitas.agents.graphs.validate import check
from gravitas.agents.graphs.zones import zones_of
from gravitas.schemas.errors import ConfigError, GravitasError

if TYPE_CHECKING:
    from gravitas.agents.services import NodeServices

Progress = Callable[[float, str], None]


class _Limits(Callback):  # type: ignore[misc]
    """Time limit and progress over the dask tasks of one compute."""

    def __init__(self, deadline: float, progress: Progress | None) -> None:
        super().__init__()
        self.deadline = deadline
        self.progress = progress
        self.total = 1
        self.done = 0

    def _start_state(self, dsk: Mapping[Any, Any], state: Mapping[str, Any]) -> None:
        self.total = max(1, len(state.get("ready", ())) + len(state.get("waiting", {}))
                         + len(state.get("cache", {})))  # fmt: skip

    def _pretask(self, key: Any, dsk: Any, state: Any) -> None:
        if time.monotonic() > self.deadline:
            raise ResourceLimitExceeded(
                "the graph ran over its time limit (GRAVITAS_GRAPH_MAX_SECONDS); "
                "narrow the extents or use batch jobs"
            )

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        self.done += 1
        if self.progress is not None and self.done % 16 == 0:
            self.progress(min(0.99, self.done / self.total), "computing")


def _bounds(cube: xr.DataArray) -> tuple[float, float, float, float] | None:
    """The lon/lat bounds of a cube's pixel edges (``None`` without coordinates)."""
    try:
        w, s, e, n = (float(v) for v in cube.rio.bounds(recalc=True))
    except Exception:
        return None
    return (max(w, -180.0), max(s, -90.0), min(e, 180.0), min(n, 90.0))


def _nodes_of(graph: Mapping[str, Any], pid: str) -> list[str]:
    return [k for k, v in graph.items() if isinstance(v, Mapping) and v.get("process_id") == pid]


def _translate(exc: BaseException, pid: str, graph: Mapping[str, Any]) -> GraphError:
    """A specific :class:`GraphError` for whatever a process raised."""
    if isinstance(exc, GraphError):
        return exc
    nodes = _nodes_of(graph, pid)
    node = nodes[0] if len(nodes) == 1 else (f"{pid} in {nodes}" if nodes else pid)
    name = type(exc).__name__
    text = str(exc).splitlines()[0][:300] if str(exc) else name
    if isinstance(exc, GravitasError):
        err: GraphError = ProcessArgumentInvalid(text, node=node)
    elif name == "ProcessParameterMissing":
        err = ProcessParameterMissing(text, node=node)
    elif isinstance(exc, TypeError | ValueError | KeyError | IndexError) or (
        type(exc).__module__.startswith("openeo_processes_dask")
    ):
        err = ProcessArgumentInvalid(f"{pid} failed: {name}: {text}", node=node)
        if type(exc).__module__.startswith("openeo_processes_dask"):
            err.code = name
    else:
        err = GraphError(f"{pid} failed: {name}: {text}", node=node)
    return err


def _wrap(pid: str, fn: Callable[..., Any], graph: Mapping[str, Any]) -> Callable[..., Any]:
    from openeo_processes_dask.process_implementations.core import process

    inner = process(fn)

    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return inner(*args, **kwargs)
        except Exception as exc:
            raise _translate(exc, pid, graph) from None

    run.__name__ = pid
    return run


class _Run:
    """One execution: the stores, limits and the gravitas processes bound to them."""

    def __init__(self, services: NodeServices, graph: Mapping[str, Any], distributed: bool,
                 remote: bool = False):  # fmt: skip
        self.remote = remote
        """A scheduler on other machines (``tcp://``): files are written here, not there."""
        self.services = services
        self.graph = graph
        settings = services.settings
        self.max_bytes = int(getattr(settings, "graph_max_bytes", 8 * 1024**3))
        self.registry = services.layers
        self.loaded: dict[int, overviews.Loaded] = {}
        self.served_from_overviews = 0
        self.store: Any = services.block_store
        if distributed:
            url = settings.block_store or ""
            if not url.startswith("s3://"):
                raise ConfigError(
                    "a dask.distributed scheduler needs the shared S3 block store "
                    f"(GRAVITAS_BLOCK_STORE=s3://...), not {url or 'the local RocksDB'}"
                )
            from gravitas.agents.graphs.handles import StoreHandle

            self.store = StoreHandle(url, services._secret("s3_access_key"),
                                     services._secret("s3_secret_key"))  # fmt: skip

    def node(self, pid: str) -> str:
        nodes = _nodes_of(self.graph, pid)
        return nodes[0] if len(nodes) == 1 else pid

    def load_collection(
        self, id: str, spatial_extent: Any = None, temporal_extent: Any = None,
        bands: Any = None, properties: Any = None, **_: Any,
    ) -> xr.DataArray:  # fmt: skip
        node = self.node("load_collection")
        if properties:
            raise ProcessArgumentInvalid(
                "property filters are not supported on this node's collections",
                node=node,
                argument="properties",
            )
        cube = collection.load(self.store, self.registry, node, id, spatial_extent,
                               temporal_extent, bands, self.max_bytes)  # fmt: skip
        overviews.remember(self, cube, collection.infos(self.registry, cube),
                           collection.bbox_of(node, spatial_extent))  # fmt: skip
        return cube

    def save_result(self, data: Any, format: str, options: Any = None, **_: Any) -> GraphResult:
        node = self.node("save_result")
        if not isinstance(format, str):
            raise ProcessArgumentInvalid("format must be a string", node=node, argument="format")
        return finish(data, format, node, self.max_bytes, self.remote)

    def aggregate_spatial(
        self, data: Any, geometries: Any, reducer: Callable[..., Any],
        target_dimension: str = "result", context: Any = None, **_: Any,
    ) -> xr.DataArray:  # fmt: skip
        node = self.node("aggregate_spatial")
        if not isinstance(data, xr.DataArray) or not {"x", "y"} <= set(data.dims):
            raise ProcessArgumentInvalid("data must be a raster cube with x and y dimensions",
                                         node=node, argument="data")  # fmt: skip
        geometries = zones_of(geometries, self.services.data_dir, _bounds(data), node)
        fast = None
        if getattr(self.services.settings, "graph_overviews", True):
            fast = overviews.try_aggregate(self, data, geometries, node)
        if fast is not None:
            return fast
        return aggregate(data, geometries, reducer, target_dimension, context, node)

    def process_registry(self) -> Any:
        from openeo_pg_parser_networkx import ProcessRegistry
        from openeo_pg_parser_networkx.process_registry import Process

        reg = ProcessRegistry()
        for pid, fn in implementations().items():
            if pid in OVERRIDES:
                fn = OVERRIDES[pid](fn)
            reg["predefined", pid] = Process(spec_view(pid), _wrap(pid, fn, self.graph))
        spatial = SpatialReducers(self)
        for pid in ("reduce_spatial", "reduce_dimension"):
            fn = getattr(spatial, pid)(implementations()[pid])
            reg["predefined", pid] = Process(spec_view(pid), _wrap(pid, fn, self.graph))
        for pid in ("load_collection", "save_result", "aggregate_spatial"):
            reg["predefined", pid] = Process(spec_view(pid), _wrap(pid, getattr(self, pid),
                                                                 self.graph))  # fmt: skip
        return reg


def finish(value: Any, fmt: str, node: str, max_bytes: int, remote: bool = False) -> GraphResult:
    """Compute and encode a result, refusing one over the memory limit or all nodata.

    ZARR is streamed from the lazy cube (chunk by chunk, larger than memory is fine)."""
    if save_mod.output_format(fmt) == "ZARR":
        if remote:  # remote workers would write to their own disks: stream it here
            with dask.config.set(scheduler="threads"):
                return save_mod.save(value, fmt, node)
        return save_mod.save(value, fmt, node)
    if isinstance(value, xr.DataArray):
        if value.nbytes > max_bytes:
            raise ResourceLimitExceeded(
                f"the result is {value.nbytes / 1e9:.2f} GB, over GRAVITAS_GRAPH_MAX_BYTES",
                node=node,
                argument="data",
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices stay NaN
            value = value.compute()
        if value.dtype.kind == "f" and value.size and bool(value.isnull().all()):
            raise NoDataForUpdate(
                "every value of the result is nodata: the selection holds no valid pixels",
                node=node,
                argument="data",
            )
    return save_mod.save(value, fmt, node)


def execute(
    process_graph: Mapping[str, Any],
    services: NodeServices,
    *,
    progress: Progress | None = None,
    scheduler: str | None = None,
) -> GraphResult:
    """Run ``process_graph`` on the node's data and return the encoded result.

    ``process_graph`` is the flat ``{node: {process_id, arguments, result}}`` mapping,
    or an object holding it under ``process_graph`` (or ``process.process_graph``).
    ``scheduler`` overrides ``GRAVITAS_DASK_SCHEDULER``. Raises a
    :class:`~gravitas.agents.graphs.errors.GraphError` subclass, never anything else.
    """
    graph = check(process_graph)
    settings = services.settings
    try:
        spec = check_spec(scheduler or getattr(settings, "dask_scheduler", None))
    except ConfigError as exc:
        raise GraphError(str(exc)) from None
    seconds = float(getattr(settings, "graph_max_seconds", 600.0))
    started = time.monotonic()
    try:
        run = _Run(services, graph, is_distributed(spec), spec.startswith(("tcp://", "tls://")))
        from openeo_pg_parser_networkx import OpenEOProcessGraph

        try:
            parsed = OpenEOProcessGraph({"process_graph": dict(graph)})
        except Exception as exc:
            text = str(exc).splitlines()[0][:300]
            raise ProcessGraphInvalid(f"the graph does not parse: {text}") from None
        callable_ = parsed.to_callable(run.process_registry())
        if progress is not None:
            progress(0.0, "started")
        limits = _Limits(time.monotonic() + seconds, progress)
        with dask.config.set(scheduler=scheduler_get(spec)), limits:
            result = callable_()
            if not isinstance(result, GraphResult):
                fmt = (
                    "netCDF"
                    if isinstance(result, xr.DataArray) and {"x", "y"} <= set(result.dims)
                    else "JSON"
                )
                result = finish(result, fmt, parsed.result_node, run.max_bytes, run.remote)
    except GraphError:
        raise
    except ConfigError as exc:
        raise GraphError(str(exc)) from None
    except Exception as exc:  # a library failure outside any process: still one line
        raise GraphError(
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        ) from None
    if progress is not None:
        progress(1.0, "done")
    details = {
        "seconds": round(time.monotonic() - started, 3),
        "scheduler": spec,
        "served_from_overviews": run.served_from_overviews,
    }
    return dataclasses.replace(result, details=details)
