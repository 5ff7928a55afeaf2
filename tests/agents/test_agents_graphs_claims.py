"""Scalar semantics fixed around openeo-processes-dask, and the processes a node claims
in openEO's GET /processes (docs/openeo.md "openeo-test-suite")."""

from __future__ import annotations

import numpy as np
import xarray as xr

from gravitas.agents import graphs
from gravitas.agents.graphs.claims import UNCLAIMED
from gravitas.agents.graphs.overrides import OVERRIDES
from gravitas.agents.graphs.registry import implementations


def _run(pid: str, **kwargs: object) -> object:
    return OVERRIDES[pid](implementations()[pid])(**kwargs)


def test_scalar_comparisons_and_null_operands_follow_the_openeo_specs() -> None:
    assert _run("gt", x=2, y=1) is True and _run("lte", x=2, y=1) is False
    assert _run("gt", x="b", y="a") is False  # not numbers: false, not a string order
    assert _run("gte", x=True, y=0) is False  # booleans are not numbers
    assert _run("lt", x=None, y=1) is None
    assert _run("eq", x=1, y=1) is True and _run("neq", x=1, y=1) is False
    assert _run("add", x=None, y=1) is None and _run("add", x=1, y=2) == 3
    assert _run("sqrt", x=None) is None and _run("sqrt", x=4.0) == 2.0
    # cubes keep openeo-processes-dask's numeric answers (NaN is nodata there)
    cube = xr.DataArray(np.array([[1.0, np.nan], [3.0, 0.0]]), dims=("y", "x"))
    out = np.asarray(_run("gt", x=cube, y=1.0))
    expected = np.where(np.isnan(cube.values), np.nan, cube.values > 1.0)
    np.testing.assert_array_equal(out, expected)


def test_claimed_processes_are_the_executed_ones_minus_the_unclaimed() -> None:
    executed = {p["id"] for p in graphs.processes()}
    claimed = {p["id"] for p in graphs.claimed_processes()}
    assert set(UNCLAIMED) <= executed  # every entry names a real process
    assert claimed == executed - set(UNCLAIMED)
    assert {"load_collection", "save_result", "ndvi", "reduce_dimension", "filter_bbox"} <= claimed
    assert all(reason for reason in UNCLAIMED.values())
