# ruff: noqa: F811  (pytest fixtures imported from tests.fixtures.catalogs)
"""Hostile catalog searches through a live node's HTTP edge, on SQLite and on pgstac.

Every user value of ``GET/POST /stac/search`` is attacked (CQL2 property names in
cql2-json and cql2-text, sortby fields, ids, collections, bboxes, datetimes, limits,
paging tokens, filter-lang, whole random CQL2 trees), mostly with hypothesis. Each case
must be answered 200 (the value matched as a harmless literal) or 400 with a message
naming the bad value; never a 5xx. After every case the checksum of everything stored
in the catalog (tables, collections, items with owner and version) is unchanged, and
the node still answers a plain search with the seeded items.
``GRAVITAS_HOSTILE_EXAMPLES`` sets the hypothesis examples per test (default 60).
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gravitas.storage.catalog import Catalog
from gravitas.storage.catalog.cql2sql import named_column
from gravitas.storage.catalog.search_checks import MAX_NAME
from tests.fixtures.catalog_state import stored_state
from tests.fixtures.catalogs import pc_items  # noqa: F401
from tests.fixtures.stac_api import running_node

EXAMPLES = int(os.environ.get("GRAVITAS_HOSTILE_EXAMPLES", "60"))
NO_MATCH = "gv-no-such-value"
COUNTS: Counter[str] = Counter()
"""Hostile cases sent, per backend (printed at the end of each backend's module run)."""

HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

CLASSIC = [
    "'",
    "''",
    '"',
    "\\",
    "--",
    ";",
    "' OR '1'='1",
    "x') OR 1=1 --",
    "x\"') OR (SELECT count(*) FROM items) > 0 OR json_extract(items.doc, '$.id",
    "'; DROP TABLE items; --",
    "a'); DELETE FROM items; --",
    "eo:cloud_cover' || (SELECT doc FROM items LIMIT 1) || '",
    "$.id",
    "$[0]",
    "*",
    "%",
    "_",
    "a\x00b",
    "\x00",
    "名前",
    "😀",
    "\u202eevil",
    "é" * 300,
    "a" * 5000,
    "properties.",
    "properties",
    "properties.properties",
    "assets.visual.href",
    "links",
    " ",
    "\t",
    "line\nbreak",
    "a\\'b",
    "pg_sleep(10)",
    "1; SELECT pg_sleep(10)",
]
"""Known SQL-injection and encoding attacks on names and values."""

hostile_text = st.one_of(
    st.sampled_from(CLASSIC),
    st.text(max_size=40),
    st.text(alphabet="'\";\\-()*% _$.[]\x00\n", max_size=30),
    st.text(min_size=MAX_NAME - 2, max_size=MAX_NAME + 40),
)
hostile_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | hostile_text,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "op",
                    "args",
                    "property",
                    "timestamp",
                    "date",
                    "interval",
                    "bbox",
                    "type",
                    "coordinates",
                    "filter",
                ]
            )
            | hostile_text,
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
CQL2_OPS = [
    "and",
    "or",
    "not",
    "=",
    "<>",
    "<",
    ">=",
    "like",
    "in",
    "between",
    "isNull",
    "s_intersects",
    "+",
    "t_intersects",
    "a_contains",
    "casei",
    "accenti",
    "DROP",
]


def cql2_tree() -> st.SearchStrategy[Any]:
    """Random CQL2-JSON trees: real operators, hostile properties and literals."""
    leaf = st.one_of(
        st.builds(lambda p: {"property": p}, hostile_text),
        hostile_json,
        st.builds(lambda t: {"timestamp": t}, hostile_text),
        st.builds(lambda b: {"bbox": b}, st.lists(st.floats(), max_size=5)),
    )
    return st.recursive(
        leaf,
        lambda inner: st.builds(
            lambda op, args: {"op": op, "args": args},
            st.sampled_from(CQL2_OPS) | hostile_text,
            st.lists(inner, max_size=3) | inner,
        ),
        max_leaves=10,
    )


# --- the node under attack ---------------------------------------------------------------


class Target:
    """A live node, its catalog, an HTTP client on its STAC API and the stored state."""

    def __init__(
        self,
        backend: str,
        catalog: Catalog,
        client: httpx.Client,
        baseline: dict[str, str],
        local_ids: set[str],
        seeded: list[dict[str, Any]],
    ) -> None:
        self.backend = backend
        self.catalog = catalog
        self.client = client
        self.baseline = baseline
        self.local_ids = local_ids
        self.seeded = seeded

    def __repr__(self) -> str:
        return f"Target({self.backend!r})"


def _seed(cat: Catalog, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], set[str]]:
    """Eight real Planetary Computer items (some at versions 2 and 3, one owned by another
    node) plus an item whose property names hold quotes and SQL comment marks."""
    chosen = items[:8]
    for i, it in enumerate(chosen):
        cat.upsert_item(it, version=1)
        if i % 3 == 0:
            newer = copy.deepcopy(it)
            newer["properties"]["gravitas:test"] = f"v{2 + i % 2}"
            cat.upsert_item(newer, version=2 + i % 2)
    remote = copy.deepcopy(items[8])
    cat.upsert_item(remote, owning_node="node-z", version=5)
    odd = copy.deepcopy(items[0])
    odd["id"] = "odd-names"
    odd["properties"].update({"a'b": "quoted", "x--;y": 7, "名前": "unicode"})
    cat.upsert_item(odd)
    local = {it["id"] for it in chosen} | {"odd-names"}
    return [*chosen, remote, odd], local


@pytest.fixture(scope="module", params=["sqlite", "pgstac"])
def target(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pc_items: list[dict[str, Any]],
) -> Iterator[Target]:
    """A node on each catalog backend, seeded, with its stored-state baseline."""
    extra: dict[str, Any] = {}
    if request.param == "pgstac":
        from tests.fixtures.pgstac import fresh_pgstac_dsn

        extra["catalog"] = fresh_pgstac_dsn(request.getfixturevalue("pg_cluster"))
    data_dir: Path = tmp_path_factory.mktemp(f"hostile-{request.param}")
    with running_node(data_dir, node_id="node-a", **extra) as node:
        cat = node.services.catalog
        seeded, local = _seed(cat, pc_items)
        baseline = stored_state(catalog=cat)
        with httpx.Client(base_url=f"{node.edge_url}/stac", timeout=120) as client:
            yield Target(request.param, cat, client, baseline, local, seeded)
            # the node is still up and unchanged after everything the module sent
            r = client.get("/search", params={"limit": 100})
            assert r.status_code == 200
            assert {f["id"] for f in r.json()["features"]} == local
            assert stored_state(catalog=cat) == baseline
    print(f"\nhostile catalog cases on {request.param}: {COUNTS[request.param]}")


# --- one attack --------------------------------------------------------------------------

_ESCAPES = re.compile(r"[\\'\"]")


def _norm(text: str) -> str:
    return _ESCAPES.sub("", text)


def names(description: str, value: Any) -> bool:
    """True when an error message names ``value`` (as repr, allowing for truncation and
    for the value appearing inside the repr of an enclosing string or object)."""
    text = value if isinstance(value, str) else json.dumps(value)
    if not text.strip():
        return "empty" in description or repr(value) in description
    probes = {_norm(repr(value))[:24], _norm(repr(text))[:24], _norm(str(text))[:24]}
    probes.discard("")
    if not probes:  # only quotes and backslashes: look for them as written
        return repr(value) in description or text in description
    body = _norm(description)
    return any(p in body for p in probes)


def attack(
    t: Target,
    method: str,
    *,
    params: dict[str, Any] | None = None,
    body: Any = None,
    expect_ok: bool | None = None,
    matched: int | None = None,
    named: Any = None,
    mentions: str | None = None,
) -> httpx.Response:
    """Send one hostile search; check the answer and that nothing stored changed.

    ``expect_ok``: True = must be 200, False = must be 400, None = either. ``matched``:
    numberMatched a 200 must report. ``named``: a 400 must name this value;
    ``mentions``: a 400 must contain this word.
    """
    COUNTS[t.backend] += 1
    if method == "GET":
        r = t.client.get("/search", params=params)
    else:
        content = json.dumps(body, allow_nan=True)  # NaN/Infinity: what a hostile client sends
        r = t.client.post("/search", content=content, headers={"content-type": "application/json"})
    sent = f"{method} {params if method == 'GET' else body!r:.300}"
    assert r.status_code in (200, 400), f"{sent}: HTTP {r.status_code} {r.text:.500}"
    if r.status_code == 200:
        assert expect_ok is not False, f"{sent} was accepted: {r.text:.300}"
        doc = r.json()
        if matched is not None:
            assert doc["numberMatched"] == matched, f"{sent}: matched {doc['numberMatched']}"
    else:
        assert expect_ok is not True, f"{sent} refused: {r.text:.500}"
        doc = r.json()
        assert doc["code"] == "BadRequest"
        desc = doc["description"]
        assert "\n" not in desc.strip() and "Traceback" not in desc
        if named is not None:
            assert names(desc, named), f"400 for {named!r:.200} does not name it: {desc:.400}"
        if mentions is not None:
            assert mentions in desc, f"400 does not mention {mentions!r}: {desc:.400}"
    assert stored_state(catalog=t.catalog) == t.baseline, f"state changed by {sent}"
    return r


def _ordinary(name: str) -> bool:
    """A name the catalog maps to a column (datetime, id, ...): compared as that type."""
    return isinstance(name, str) and named_column(name) is not None


# --- property names in filters -------------------------------------------------------------

CHANNELS = ["post-json", "get-json", "get-text", "post-text"]


def _filter_request(channel: str, name: str, value: Any = NO_MATCH) -> dict[str, Any]:
    expr = {"op": "=", "args": [{"property": name}, value]}
    literal = str(value) if isinstance(value, int | float) else "'" + value.replace("'", "''") + "'"
    text = f'"{name}" = {literal}'
    if channel == "post-json":
        return {"method": "POST", "body": {"filter": expr, "filter-lang": "cql2-json"}}
    if channel == "get-json":
        return {
            "method": "GET",
            "params": {"filter": json.dumps(expr), "filter-lang": "cql2-json"},
        }
    if channel == "get-text":
        return {"method": "GET", "params": {"filter": text, "filter-lang": "cql2-text"}}
    return {"method": "POST", "body": {"filter": text, "filter-lang": "cql2-text"}}


@HYPOTHESIS
@given(name=hostile_text, channel=st.sampled_from(CHANNELS))
def test_filter_property_names(target: Target, name: str, channel: str) -> None:
    assume(not _ordinary(name))
    req = _filter_request(channel, name)
    r = attack(target, req.pop("method"), **req, matched=0)
    if r.status_code == 400:  # cql2-text reads "" inside a quoted name as one "
        desc = r.json()["description"]
        assert names(desc, name) or names(desc, name.replace('""', '"')), desc


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [("a'b", "quoted", 1), ("x--;y", 7, 1), ("名前", "unicode", 1), ("a'b", "' OR '1'='1", 0)],
)
def test_awkward_but_real_names_still_match(
    target: Target, channel: str, name: str, value: Any, expected: int
) -> None:
    """Bound JSON paths still find properties whose names hold quotes or ``--;``."""
    req = _filter_request(channel, name, value)
    attack(target, req.pop("method"), **req, expect_ok=True, matched=expected)


@pytest.mark.parametrize("channel", ["post-json", "get-json"])
@pytest.mark.parametrize(
    "name", [None, 5, ["a"], {"x": 1}, "", "properties.", 'a"b', "a\\b", "a\x00b", "x" * 300]
)
def test_bad_property_names_refused(target: Target, channel: str, name: Any) -> None:
    req = _filter_request(channel, "placeholder")
    expr = {"op": "=", "args": [{"property": name}, NO_MATCH]}
    if channel == "post-json":
        req["body"]["filter"] = expr
    else:
        req["params"]["filter"] = json.dumps(expr)
    attack(target, req.pop("method"), **req, expect_ok=False, named=name)


# --- sortby -----------------------------------------------------------------------------------


@HYPOTHESIS
@given(name=hostile_text, desc=st.booleans(), method=st.sampled_from(["GET", "POST"]))
def test_sortby_fields(target: Target, name: str, desc: bool, method: str) -> None:
    n = len(target.local_ids)
    if method == "GET":
        assume("," not in name and name == name.strip() and not name.startswith(("+", "-")))
        spec = f"{'-' if desc else '+'}{name}"
        attack(target, "GET", params={"sortby": spec, "limit": 100}, matched=n, named=name)
    else:
        sort = [{"field": name, "direction": "desc" if desc else "asc"}]
        attack(target, "POST", body={"sortby": sort, "limit": 100}, matched=n, named=name)


@pytest.mark.parametrize(
    "sortby",
    [[5], [None], [{"field": 5}], [{"field": "id", "direction": "sideways"}], {"field": "id"}, 7],
)
def test_bad_sortby_shapes_refused(target: Target, sortby: Any) -> None:
    attack(target, "POST", body={"sortby": sortby}, expect_ok=False, mentions="sort")


# --- ids and collections ----------------------------------------------------------------------


@HYPOTHESIS
@given(
    values=st.lists(hostile_text, min_size=1, max_size=5),
    key=st.sampled_from(["ids", "collections"]),
    method=st.sampled_from(["GET", "POST"]),
)
def test_ids_and_collections(target: Target, values: list[str], key: str, method: str) -> None:
    known = {it["id"] for it in target.seeded} | {it["collection"] for it in target.seeded}
    assume(not known & {v.strip() for v in values})
    bad = [v for v in values if "\x00" in v]
    if method == "GET":
        assume(all("," not in v for v in values) and any(v.strip() for v in values))
        r = attack(target, "GET", params={key: ",".join(values)}, expect_ok=not bad)
    else:
        r = attack(target, "POST", body={key: values}, expect_ok=not bad)
    if r.status_code == 400:
        desc = r.json()["description"]
        assert any(names(desc, b.strip()) or names(desc, b) for b in bad), desc
    if r.status_code == 200:
        assert r.json()["numberMatched"] == 0


@pytest.mark.parametrize("value", [[1, 2], [None], [{"a": 1}], 5, {"x": "y"}])
@pytest.mark.parametrize("key", ["ids", "collections"])
def test_ids_of_wrong_type_refused(target: Target, key: str, value: Any) -> None:
    attack(target, "POST", body={key: value}, expect_ok=False, mentions="string")


# --- bbox ---------------------------------------------------------------------------------------

bbox_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-200, max_value=200),
    st.integers(min_value=-400, max_value=400),
)


def _valid_bbox(values: list[Any]) -> bool:
    import math

    if len(values) not in (4, 6):
        return False
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return False
    if not all(math.isfinite(v) for v in values):
        return False
    w, s, e, n = (values[0], values[1], values[3], values[4]) if len(values) == 6 else values
    return -180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= n <= 90


@HYPOTHESIS
@given(
    values=st.lists(bbox_number, max_size=7)
    | st.lists(st.one_of(bbox_number, st.text(max_size=4), st.none(), st.booleans()), max_size=7),
    method=st.sampled_from(["GET", "POST"]),
)
def test_bboxes(target: Target, values: list[Any], method: str) -> None:
    if method == "GET":
        assume(values and all(v is not None and "," not in str(v) for v in values))
        # a query string carries text: "nan", "inf", "True" are what a client would send
        text = ",".join(str(v) for v in values)
        assume(text != "")  # an empty bbox parameter is no bbox
        ok = _valid_bbox([_as_float(str(v)) for v in values])
        attack(target, "GET", params={"bbox": text}, expect_ok=ok, mentions="bbox")
    else:
        attack(
            target, "POST", body={"bbox": values}, expect_ok=_valid_bbox(values), mentions="bbox"
        )


def _as_float(v: Any) -> Any:
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def test_antimeridian_bbox_answers(target: Target) -> None:
    """west > east crosses the antimeridian: allowed (its matching is the ingest area's)."""
    attack(target, "GET", params={"bbox": "170,-10,-170,10"}, expect_ok=True)
    attack(target, "POST", body={"bbox": [179.5, -90, -179.5, 90]}, expect_ok=True)


# --- datetime -----------------------------------------------------------------------------------

instants = st.one_of(
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(
        [
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
            "2020-02-30T00:00:00Z",
            "2020-01-01T24:00:00Z",
            "2020-01-01",
            "2020-01-01T00:00:00.1234567890123Z",
            "..",
            "",
        ]
    ),
    hostile_text,
)


@HYPOTHESIS
@given(
    start=instants,
    end=instants | st.none(),
    method=st.sampled_from(["GET", "POST"]),
)
def test_datetimes(target: Target, start: str, end: str | None, method: str) -> None:
    value = start if end is None else f"{start}/{end}"
    assume(value.strip())
    if method == "GET":
        r = attack(target, "GET", params={"datetime": value}, mentions="datetime")
    else:
        r = attack(target, "POST", body={"datetime": value}, mentions="datetime")
    if r.status_code == 400:  # the message names the whole value or the bad end of it
        desc = r.json()["description"]
        parts = [value, *value.split("/")]
        named = any(names(desc, p) or names(desc, p.strip()) for p in parts)
        assert named, f"{value!r:.200} not named: {desc}"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2020-01-01T00:00:00Z/..", True),
        ("../2020-01-01T00:00:00Z", True),
        ("/2020-01-01T00:00:00Z", True),
        ("../..", False),
        ("2021-01-01T00:00:00Z/2020-01-01T00:00:00Z", False),
        ("2020-01-01T00:00:00Z/2021-01-01T00:00:00Z/2022-01-01T00:00:00Z", False),
        (5, False),
        (["2020-01-01T00:00:00Z"], False),
        ({"start": "x"}, False),
    ],
)
def test_datetime_intervals(target: Target, value: Any, ok: bool) -> None:
    attack(target, "POST", body={"datetime": value}, expect_ok=ok, mentions="datetime")


# --- limit, token, filter-lang, intersects -----------------------------------------------


@HYPOTHESIS
@given(
    limit=st.one_of(
        st.integers(min_value=-(10**20), max_value=10**20),
        st.floats(allow_nan=True, allow_infinity=True),
        hostile_text,
        st.booleans(),
        st.lists(st.integers(), max_size=2),
    ),
    method=st.sampled_from(["GET", "POST"]),
)
def test_limits(target: Target, limit: Any, method: str) -> None:
    if method == "GET":
        assume(not isinstance(limit, list) and str(limit) != "")
        text = str(limit)
        try:
            ok: bool | None = int(text) >= 1
        except ValueError:
            ok = False
        attack(target, "GET", params={"limit": text}, expect_ok=ok, mentions="limit")
    else:
        assume(limit not in ("", None) and limit is not False)
        ok = isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1
        if isinstance(limit, str):
            try:
                ok = int(limit) >= 1
            except ValueError:
                ok = False
        attack(target, "POST", body={"limit": limit}, expect_ok=ok, mentions="limit")


def test_huge_limits_are_clamped(target: Target) -> None:
    r = attack(target, "GET", params={"limit": str(10**30)}, expect_ok=True)
    assert r.json()["numberReturned"] == len(target.local_ids)
    attack(target, "POST", body={"limit": 10**18}, expect_ok=True)
    # a 5000-digit number is beyond what Python's JSON parser reads: refused, not a crash
    r = target.client.post(
        "/search",
        content=b'{"limit": ' + b"9" * 5000 + b"}",
        headers={"content-type": "application/json"},
    )
    COUNTS[target.backend] += 1
    assert 400 <= r.status_code < 500
    assert stored_state(catalog=target.catalog) == target.baseline


@HYPOTHESIS
@given(token=hostile_text, method=st.sampled_from(["GET", "POST"]))
def test_tokens(target: Target, token: str, method: str) -> None:
    assume(token.strip())
    if method == "GET":
        attack(target, "GET", params={"token": token}, expect_ok=False, mentions="token")
    else:
        attack(target, "POST", body={"token": token}, expect_ok=False, mentions="token")


def test_forged_tokens_refused(target: Target) -> None:
    """Tokens that carry this search's digest but an absurd offset or a foreign item."""
    import base64

    from gravitas.storage.catalog.base import SearchParams

    params = SearchParams(limit=2)
    if target.backend == "sqlite":
        from gravitas.storage.catalog.sqlite import _digest, _encode_token

        forged = [_encode_token(10**30, _digest(params)), _encode_token(-1, _digest(params))]
    else:
        from gravitas.storage.catalog.pgstac import _digest as pg_digest
        from gravitas.storage.catalog.pgstac import _wrap_token

        digest = pg_digest(target.catalog.search_body(params))  # type: ignore[attr-defined]
        forged = [
            str(_wrap_token(t, digest))
            for t in ["next:zz:zz", "next:'; DROP TABLE items; --", "prev:61:62", "x" * 1000]
        ]
    forged.append(base64.urlsafe_b64encode(b"\xff\xfe").decode())
    for token in forged:
        attack(
            target, "GET", params={"limit": 2, "token": token}, expect_ok=False, mentions="token"
        )


@HYPOTHESIS
@given(lang=hostile_text | st.integers() | st.lists(st.text(max_size=3), max_size=2))
def test_filter_lang(target: Target, lang: Any) -> None:
    assume(bool(lang) and lang not in ("cql2-json", "cql2-text"))
    attack(
        target,
        "POST",
        body={"filter": {"op": "=", "args": [1, 1]}, "filter-lang": lang},
        expect_ok=False,
        mentions="filter",
    )


@HYPOTHESIS
@given(flt=cql2_tree(), method=st.sampled_from(["POST", "GET"]))
def test_random_cql2_trees(target: Target, flt: Any, method: str) -> None:
    """Anything at all in a cql2-json filter: 200 or a 400 about the filter."""
    assume(flt is not None and flt != "")
    if method == "POST":
        attack(target, "POST", body={"filter": flt, "filter-lang": "cql2-json"})
    else:
        text = json.dumps(flt, allow_nan=True)
        attack(target, "GET", params={"filter": text, "filter-lang": "cql2-json"})


@HYPOTHESIS
@given(text=hostile_text | st.builds(lambda a, b: f"{a} = {b}", hostile_text, hostile_text))
def test_random_cql2_text(target: Target, text: str) -> None:
    assume(text.strip())
    attack(target, "GET", params={"filter": text, "filter-lang": "cql2-text"})


@pytest.mark.parametrize(
    "intersects",
    [
        5,
        [1, 2],
        {"coordinates": [1, 2]},
        {"type": "Point", "coordinates": ["x", "y"]},
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]},
        {"type": "'; DROP TABLE items; --", "coordinates": [0, 0]},
        {"type": "Point", "coordinates": [float("nan"), 0]},
    ],
)
def test_bad_intersects(target: Target, intersects: Any) -> None:
    attack(target, "POST", body={"intersects": intersects}, expect_ok=False, mentions="intersects")


def test_deep_and_wide_filters_refused(target: Target) -> None:
    deep: Any = {"op": "=", "args": [{"property": "x"}, 1]}
    for _ in range(200):
        deep = {"op": "not", "args": [deep]}
    attack(target, "POST", body={"filter": deep}, expect_ok=False, mentions="nested")
    wide = {"op": "in", "args": [{"property": "x"}, list(range(20_000))]}
    attack(target, "POST", body={"filter": wide}, expect_ok=False, mentions="values")
    attack(
        target,
        "POST",
        body={"ids": [f"i{k}" for k in range(20_000)]},
        expect_ok=False,
        mentions="ids",
    )


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"filter": "(" * 3000 + "a = 1" + ")" * 3000}, "nests parentheses"),
        ({"filter": "a = " + "- " * 6000 + "1"}, "more than 8000"),
        ({"filter": "NOT " * 1990 + "a = 1"}, "nested deeper than"),
        ({"filter": '"x\x00" = 1'}, "NUL"),
        ({"filter": '"a\\"b" = 1'}, "cannot parse"),
        (
            {
                "filter": '{"op": "=", "args": [{"property": "a\\"b"}, 1]}',
                "filter-lang": "cql2-json",
            },
            'a"b',
        ),
        ({"filter": "[1, 2]", "filter-lang": "cql2-json"}, "filter"),
        ({"filter": "a = 1", "filter-lang": "sql"}, "filter-lang"),
    ],
)
def test_hostile_get_filters_refused(target: Target, params: dict[str, str], named: str) -> None:
    """GET filters that once segfaulted the stac-fastapi-pgstac process (now served by the
    node's one router on both backends): refused on /search and on a collection's items."""
    attack(target, "GET", params=params, expect_ok=False, mentions=named)
    collection = target.seeded[0]["collection"]
    r = target.client.get(f"/collections/{collection}/items", params=params)
    assert r.status_code == 400, r.text[:300]
    assert named in r.json()["description"]
    assert target.client.get("/").status_code == 200
    assert stored_state(catalog=target.catalog) == target.baseline
