"""A ``Featurize`` request that carries a process graph, answered by the engine.

Small answers travel in :class:`FeatureResult` ``values``: a JSON result (aggregates,
scalars) is flattened to ``{time or "all": {label: value}}`` where the label joins the
other dimensions' coordinates (``"0/B04"`` for geometry 0, band B04); nodata values are
left out. Raster results
(GTiff, netCDF) are written to the object store under ``results/<request id>.<ext>``
and referenced with their size and SHA-256; a Zarr store under the published prefix
``graphs/features/<request id>/result.zarr/`` (its SHA-256 is the manifest's).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from gravitas.agents.graphs.engine import execute
from gravitas.agents.graphs.errors import ProcessGraphMissing
from gravitas.agents.results import RESULTS_PREFIX
from gravitas.schemas.events import FeatureResult, Featurize

if TYPE_CHECKING:
    from gravitas.agents.services import NodeServices

MAX_VALUES = 100_000
"""Most numbers a JSON answer may carry in ``values`` (larger ones go by reference)."""


def _flatten(body: Any) -> dict[str, dict[str, float]] | None:
    if isinstance(body, int | float) or body is None:
        return {} if body is None else {"all": {"value": float(body)}}
    if not isinstance(body, dict) or "dims" not in body:
        return None
    dims: list[str] = body["dims"]
    data = np.asarray(body["data"], dtype=np.float64)
    if data.size > MAX_VALUES:
        return None
    coords = body.get("coords", {})
    labels = [coords.get(d, list(range(data.shape[i]))) for i, d in enumerate(dims)]
    out: dict[str, dict[str, float]] = {}
    for idx in np.ndindex(data.shape):
        key = "all"
        parts = []
        for d, i in zip(dims, idx, strict=True):
            label = str(labels[dims.index(d)][i])
            if d == "t":
                key = label
            else:
                parts.append(label)
        if np.isfinite(data[idx]):  # nodata is left out (messages carry no NaN)
            out.setdefault(key, {})["/".join(parts) or "value"] = float(data[idx])
    return out


def graph_features(event: Featurize, services: NodeServices, node_id: str) -> FeatureResult:
    """Run the request's process graph; raises the engine's GraphError on failure."""
    if event.process_graph is None:
        raise ProcessGraphMissing("the Featurize request carries no process_graph")
    result = execute(event.process_graph, services)
    if result.format == "JSON":
        values = _flatten(json.loads(result.read()))
        if values is not None:
            return FeatureResult(request_id=event.request_id, values=values, served_by=node_id)
    if result.is_tree:  # Zarr: published under graphs/features/<request id>/
        from gravitas.agents.graphs.publish import GRAPHS_PREFIX, put_tree

        prefix = f"{GRAPHS_PREFIX}features/{event.request_id}/{result.filename}"
        try:
            tree = put_tree(services.object_store, prefix, result.path)  # type: ignore[arg-type]
        finally:
            result.close()
        return FeatureResult(
            request_id=event.request_id,
            served_by=node_id,
            result_ref=tree.prefix,
            result_format=result.format,
            result_sha256=tree.sha256,
            result_bytes=tree.size,
        )
    ext = result.filename.rsplit(".", 1)[-1]
    key = f"{RESULTS_PREFIX}{event.request_id}.{ext}"
    stat = services.object_store.put_bytes(key, result.read())
    return FeatureResult(
        request_id=event.request_id,
        served_by=node_id,
        result_ref=key,
        result_format=result.format,
        result_sha256=stat.sha256,
        result_bytes=stat.size,
    )
