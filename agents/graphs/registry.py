"""The process registry: openeo-processes-dask's implementations plus gravitas's own.

``processes()`` lists the openEO specs of exactly the processes :func:`execute` runs:
the ones openeo-processes-dask implements *and* ships a spec for, with ``load_collection``,
``save_result`` and ``aggregate_spatial`` replaced by gravitas's implementations (their
specs are the standard ones shipped in the same package).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["EXCLUDED", "GRAVITAS_PROCESSES", "implementations", "processes", "spec_of"]

GRAVITAS_PROCESSES = ("load_collection", "save_result", "aggregate_spatial")
"""Processes gravitas implements itself (the node's data, files and zonal statistics)."""

EXCLUDED = frozenset(
    {
        # would read locations no allow-list admits, or run user code
        "load_stac",
        "load_url",
        "load_geojson",
        "load_uploaded_files",
        "load_ml_model",
        "save_ml_model",
        "run_udf",
        "run_udf_externally",
        "export_workspace",
        "create_data_cube",
    }
)
"""Processes openeo-processes-dask implements that the engine refuses on purpose."""


def _specs_dir() -> Path:
    import openeo_processes_dask.specs as specs

    return Path(specs.__file__).parent / "openeo-processes"


@cache
def _all_specs() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(_specs_dir().glob("*.json")):
        spec = json.loads(path.read_text())
        out[spec["id"]] = spec
    return out


@cache
def implementations() -> dict[str, Callable[..., Any]]:
    """process id -> openeo-processes-dask implementation (undecorated)."""
    logging.getLogger("openeo_processes_dask").setLevel(logging.ERROR)
    import openeo_processes_dask.process_implementations as impls

    specs = _all_specs()
    out: dict[str, Callable[..., Any]] = {}
    for pid in specs:
        if pid in EXCLUDED or pid in GRAVITAS_PROCESSES:
            continue
        fn = getattr(impls, pid, None) or getattr(impls, f"_{pid}", None)
        if callable(fn):
            out[pid] = fn
    return out


def spec_of(pid: str) -> dict[str, Any]:
    """A copy of the openEO spec of ``pid`` (KeyError for a process without one)."""
    return copy.deepcopy(_all_specs()[pid])


def spec_view(pid: str) -> dict[str, Any]:
    """The shared (cached, never to be mutated) openEO spec of ``pid``: building the
    registry of every execution without deep-copying ~130 specs."""
    return _all_specs()[pid]


@cache
def _process_list() -> tuple[str, ...]:
    return tuple(sorted([*implementations(), *GRAVITAS_PROCESSES]))


def process_ids() -> frozenset[str]:
    """Ids of every process :func:`gravitas.agents.graphs.execute` runs."""
    return frozenset(_process_list())


def processes() -> list[dict[str, Any]]:
    """openEO ``/processes`` entries, sorted by id."""
    keep = ("id", "summary", "description", "categories", "parameters", "returns",
            "exceptions", "examples", "links", "experimental", "deprecated")  # fmt: skip
    out = []
    for pid in _process_list():
        spec = spec_of(pid)
        out.append({k: spec[k] for k in keep if k in spec})
    return out
