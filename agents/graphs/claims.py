"""Which executed processes a node CLAIMS in openEO's ``GET /processes``.

A process is claimed unless openEO's own process tests (the ``tests/*.json5`` of
Open-EO/openeo-processes, run by openeo-test-suite 0.2.2's http runner against a node:
``OPENEO_PROCESSES_DIR=... scripts/openeo-test-suite``, see docs/openeo.md) found it
answering wrongly. The processes below still execute (graphs, featurize requests and
workflows that use them keep working, docs/compute.md lists them) but are not advertised
over openEO; each names the failures found (mostly openeo-processes-dask's handling of
``null``, of mixed types and of labeled arrays on scalars). Tests with NaN or infinity
(not JSON) and datacube tests (no HTTP encoding) cannot run over HTTP and do not count.
"""

from __future__ import annotations

from typing import Any

from gravitas.agents.graphs.registry import processes

__all__ = ["UNCLAIMED", "claimed_processes"]

UNCLAIMED: dict[str, str] = {
    "all": "4/10 fail: assert False == True",
    "and": "4/9 fail: and failed: TypeError: bad operand type for unary ~: 'NoneType' (ref: ",
    "any": "2/10 fail: Expected a numerical result but got None of type <class 'NoneType'>",
    "array_append": "2/12 fail: array_append failed: AttributeError: 'TemporalIntervals' object...",
    "array_apply": "3/9 fail: array_apply failed: Exception: Could not apply process as it is n...",
    "array_concat": "3/6 fail: array_concat failed: AttributeError: 'TemporalIntervals' object...",
    "array_create_labeled": "3/5 fail: array_create_labeled failed: TypeError: object of type '...",
    "array_element": "3/12 fail: [500] Internal: TypeError: Object of type TemporalIntervals is...",
    "array_filter": "2/7 fail: array_filter has no argument 'process'; it takes ['condition', '...",
    "array_find": "7/12 fail: Expected None but got 999999",
    "array_interpolate_linear": "3/7 fail: array_interpolate_linear failed: TypeError: ufunc 'i...",
    "array_labels": "1/4 fail: array_labels failed: TypeError: object of type 'TemporalInterval...",
    "array_modify": "5/6 fail: Differences: {'type_changes': {'root[0]': {'old_type': <class 'i...",
    "between": "5/14 fail: between failed: TypeError: unsupported operand type(s) for -: 'NoneTyp",
    "clip": "1/18 fail: clip failed: TypeError: '>=' not supported between instances of 'NoneT",
    "constant": "1/15 fail: [500] Internal: TypeError: Object of type TemporalIntervals is not JSO",
    "count": "3/6 fail: assert 1 == 0 ± 1.0e-12",
    "cummax": "2/3 fail: cummax failed: TypeError: ufunc 'isnan' not supported for the input ty",
    "cummin": "2/3 fail: cummin failed: TypeError: ufunc 'isnan' not supported for the input ty",
    "cumproduct": "3/3 fail: cumproduct failed: ValueError: cannot convert float NaN to integer...",
    "cumsum": "3/3 fail: cumsum failed: ValueError: cannot convert float NaN to integer (ref: 0",
    "eq": "2/18 fail: Expected None but got False",
    "exp": "1/9 fail: exp failed: TypeError: loop of ufunc does not support argument 0 of ty",
    "extrema": "5/8 fail: [500] Internal: TypeError: Object of type Array is not JSON serializab",
    "first": "3/7 fail: Expected A but got None",
    "gt": "1/16 fail: assert 1.0 == False",
    "gte": "1/18 fail: gte failed: TypeError: unsupported operand type(s) for -: 'DateTime' a",
    "is_nan": "5/14 fail: is_nan failed: TypeError: ufunc 'isnan' not supported for the input ty",
    "is_valid": "1/4 fail: Expected a numerical result but got [False, False] of type <class 'lis",
    "last": "3/7 fail: Expected B but got None",
    "linear_scale_range": "1/18 fail: linear_scale_range failed: TypeError: '>=' not supported...",
    "lt": "1/16 fail: assert 1.0 == False",
    "lte": "2/18 fail: lte failed: TypeError: '<=' not supported between instances of 'DateTi",
    "max": "3/8 fail: max failed: TypeError: '>=' not supported between instances of 'int' a",
    "mean": "5/11 fail: mean failed: TypeError: unsupported operand type(s) for +: 'float' and",
    "median": "4/10 fail: median failed: TypeError: '<' not supported between instances of 'None",
    "min": "3/8 fail: min failed: TypeError: '<=' not supported between instances of 'float'",
    "order": "4/4 fail: order failed: TypeError: '<' not supported between instances of 'NoneT",
    "power": "2/17 fail: power failed: TypeError: unsupported operand type(s) for ** or pow(): ",
    "product": "3/11 fail: product failed: TypeError: unsupported operand type(s) for *: 'NoneTyp",
    "quantiles": "6/10 fail: quantiles failed: AttributeError: 'list' object has no attribute '...",
    "sd": "3/8 fail: sd failed: TypeError: unsupported operand type(s) for +: 'int' and 'No",
    "sort": "2/2 fail: sort failed: TypeError: '<' not supported between instances of 'NoneTy",
    "sum": "3/11 fail: sum failed: TypeError: unsupported operand type(s) for +: 'NoneType' a",
    "text_concat": "3/5 fail: text_concat failed: TypeError: text_concat() missing 1 required p...",
    "variance": "3/9 fail: variance failed: TypeError: unsupported operand type(s) for +: 'int' a",
    "xor": "5/9 fail: xor failed: AttributeError: 'bool' object has no attribute 'logical_xo",
}
"""process id -> why it is not claimed (measured with the suite, openeo-processes 2.0.0-rc.2)."""


def claimed_processes() -> list[dict[str, Any]]:
    """openEO ``/processes`` entries of the claimed processes, sorted by id."""
    return [p for p in processes() if p["id"] not in UNCLAIMED]
