"""The openEO API of a node (real uvicorn edge on 127.0.0.1, real Sentinel-2 B04/B08
sample ingested as collection ``s2``): capabilities, collections, auth, user-defined
processes, and hostile inputs answered with openEO error bodies and nothing stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from gravitas.streams.openeo.store import OpenEOStore
from tests.fixtures.openeo_node import TOKEN, ingest_s2, node_thread

API = "/openeo/1.2"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("openeo-api")
    ingest_s2(data)
    with node_thread(data) as url:
        yield url, data


@pytest.fixture(scope="module")
def http(node: tuple[str, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node[0] + API, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def auth(http: httpx.Client) -> dict[str, str]:
    resp = http.get("/credentials/basic", auth=("alice", TOKEN))
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer basic//{resp.json()['access_token']}"}


def _error(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"id", "code", "message", "links"}, body
    assert body["code"] == code, body
    return str(body["message"])


def test_well_known_and_capabilities(node: tuple[str, Path], http: httpx.Client) -> None:
    wk = httpx.get(node[0] + "/.well-known/openeo").json()
    assert wk["versions"][0]["api_version"] == "1.2.0"
    assert wk["versions"][0]["url"] == f"{node[0]}{API}/"
    caps = http.get("/").json()
    assert caps["api_version"] == "1.2.0" and caps["type"] == "Catalog"
    paths = {e["path"]: e["methods"] for e in caps["endpoints"]}
    assert paths["/result"] == ["POST"] and "/credentials/basic" in paths
    assert "https://api.openeo.org/1.2.0" in http.get("/conformance").json()["conformsTo"]
    formats = http.get("/file_formats").json()["output"]
    assert {"GTiff", "netCDF"} <= set(formats)
    ids = {p["id"] for p in http.get("/processes").json()["processes"]}
    assert {"load_collection", "save_result", "ndvi", "reduce_dimension"} <= ids


def test_collections_from_the_layer_registry(http: httpx.Client) -> None:
    colls = http.get("/collections").json()["collections"]
    assert [c["id"] for c in colls] == ["s2"]
    doc = http.get("/collections/s2").json()
    dims = doc["cube:dimensions"]
    assert dims["bands"]["values"] == ["B04", "B08"]
    assert dims["x"]["type"] == dims["y"]["type"] == "spatial"
    assert dims["t"]["extent"][0] == "2017-02-16T10:21:01Z"
    common = {b["name"]: b.get("common_name") for b in doc["summaries"]["eo:bands"]}
    assert common == {"B04": "red", "B08": "nir"}
    w, s, e, n = doc["extent"]["spatial"]["bbox"][0]
    # the tile T33UUU west of Berlin: within 12..13.1 E, 52.2..52.7 N (EPSG:32633 corner)
    assert 11.9 < w < e < 13.2 and 52.2 < s < n < 52.8
    assert doc["federation:backends"] == ["local"]


def test_unknown_paths_methods_and_ids(node: tuple[str, Path], http: httpx.Client) -> None:
    assert "nope" in _error(http.get("/collections/nope"), 404, "CollectionNotFound")
    _error(http.get("/collections/..%2F..%2Fetc"), 404, "NotFound")
    msg = _error(http.get("/collections/" + "a" * 300), 404, "CollectionNotFound")
    assert "not valid" in msg
    _error(http.get("/no/such/path"), 404, "NotFound")
    _error(http.delete("/collections"), 405, "MethodNotAllowed")
    _error(httpx.get(node[0] + "/openeo/0.4/"), 404, "NotFound")


def test_credentials_and_me(http: httpx.Client, auth: dict[str, str]) -> None:
    assert http.get("/me", headers=auth).json()["user_id"] == "alice"
    _error(http.get("/me"), 401, "AuthenticationRequired")
    _error(
        http.get("/me", headers={"Authorization": "Bearer basic//alice~00"}), 403, "TokenInvalid"
    )
    msg = _error(http.get("/credentials/basic", auth=("alice", "wrong")), 403, "CredentialsInvalid")
    assert "alice" in msg
    msg = _error(
        http.get("/credentials/basic", auth=("bad user!", TOKEN)), 403, "CredentialsInvalid"
    )
    assert "bad user!" in msg
    _error(http.get("/credentials/basic"), 401, "AuthenticationRequired")
    # the node token itself is accepted (user "node")
    node_auth = {"Authorization": f"Bearer basic//{TOKEN}"}
    assert http.get("/me", headers=node_auth).json()["user_id"] == "node"


def _udp_rows(data: Path) -> int:
    store = OpenEOStore.for_data_dir(data)
    try:
        return store.count_udps()
    finally:
        store.close()


def test_hostile_bodies_refused_and_nothing_stored(
    node: tuple[str, Path], http: httpx.Client, auth: dict[str, str]
) -> None:
    before = _udp_rows(node[1])
    json_h = {**auth, "Content-Type": "application/json"}
    msg = _error(http.post("/result", content=b'{"process": ', headers=json_h), 400, "JSONInvalid")
    assert "not valid JSON" in msg
    _error(http.post("/result", content=b"[1, 2]", headers=json_h), 400, "JSONInvalid")
    _error(http.post("/result", content=b"{}", headers=json_h), 400, "ProcessGraphMissing")
    deep: dict[str, object] = {"process_id": "absolute", "arguments": {}, "result": True}
    for _ in range(40):  # callbacks nested 40 deep
        deep = {
            "process_id": "apply",
            "arguments": {"process": {"process_graph": {"n": deep}}},
            "result": True,
        }
    body = orjson.dumps({"process": {"process_graph": {"n": deep}}})
    assert "deeper than" in _error(
        http.post("/result", content=body, headers=json_h), 400, "ProcessGraphInvalid"
    )
    huge = b'{"process": {"process_graph": {"a": {"process_id": "x", "arguments": {"v": "'
    huge += b"x" * (17 * 1024 * 1024) + b'"}}}}}'
    try:  # the edge answers 413 before reading the body; it may close while we still send
        status = http.post("/result", content=huge, headers=json_h).status_code
    except (httpx.RemoteProtocolError, httpx.WriteError):
        status = 413
    assert status == 413
    bad_id = {"process": {"process_graph": {"a b": {"process_id": "absolute", "result": True}}}}
    assert "'a b'" in _error(
        http.post("/result", content=orjson.dumps(bad_id), headers=json_h),
        400,
        "ProcessGraphInvalid",
    )
    # without a token nothing runs
    _error(http.post("/result", content=body), 401, "AuthenticationRequired")
    # hostile user-defined processes
    udp = {
        "process_graph": {"a": {"process_id": "absolute", "arguments": {"x": 1}, "result": True}}
    }
    _error(
        http.put("/process_graphs/..%2Fx", content=orjson.dumps(udp), headers=json_h),
        404,
        "NotFound",
    )
    assert "'bad-id'" in _error(
        http.put("/process_graphs/bad-id", content=orjson.dumps(udp), headers=json_h),
        404,
        "ProcessGraphNotFound",
    )
    assert "predefined" in _error(
        http.put("/process_graphs/ndvi", content=orjson.dumps(udp), headers=json_h),
        400,
        "ProcessGraphInvalid",
    )
    _error(
        http.put("/process_graphs/x1", content=b'{"process_graph": 3}', headers=json_h),
        400,
        "ProcessGraphInvalid",
    )
    _error(http.put("/process_graphs/x1", content=orjson.dumps(udp)), 401, "AuthenticationRequired")
    assert _udp_rows(node[1]) == before


def test_user_defined_processes_versioned(http: httpx.Client, auth: dict[str, str]) -> None:
    udp = {
        "summary": "scaled",
        "parameters": [{"name": "v", "schema": {"type": "number"}}],
        "process_graph": {
            "m": {
                "process_id": "multiply",
                "arguments": {"x": {"from_parameter": "v"}, "y": 2},
                "result": True,
            }
        },
    }
    h = {**auth, "Content-Type": "application/json"}
    assert (
        http.put("/process_graphs/double", content=orjson.dumps(udp), headers=h).status_code == 200
    )
    got = http.get("/process_graphs/double", headers=auth)
    assert got.json()["summary"] == "scaled" and got.headers["etag"] == '"1"'
    udp["summary"] = "scaled twice"
    http.put("/process_graphs/double", content=orjson.dumps(udp), headers=h)
    got = http.get("/process_graphs/double", headers=auth)
    assert got.json()["summary"] == "scaled twice" and got.headers["etag"] == '"2"'
    listed = http.get("/process_graphs", headers=auth).json()["processes"]
    assert [p["id"] for p in listed] == ["double"]
    # another user does not see it
    other = http.get("/credentials/basic", auth=("bob", TOKEN)).json()["access_token"]
    bob = {"Authorization": f"Bearer basic//{other}"}
    assert http.get("/process_graphs", headers=bob).json()["processes"] == []
    assert http.delete("/process_graphs/double", headers=auth).status_code == 204
    _error(http.get("/process_graphs/double", headers=auth), 404, "ProcessGraphNotFound")
    _error(http.delete("/process_graphs/double", headers=auth), 404, "ProcessGraphNotFound")


def test_validation(http: httpx.Client) -> None:
    good = {
        "process": {
            "process_graph": {
                "lc": {
                    "process_id": "load_collection",
                    "arguments": {"id": "s2", "spatial_extent": None, "temporal_extent": None},
                },
                "sr": {
                    "process_id": "save_result",
                    "arguments": {"data": {"from_node": "lc"}, "format": "GTiff"},
                    "result": True,
                },
            }
        }
    }
    h = {"Content-Type": "application/json"}
    assert http.post("/validation", content=orjson.dumps(good), headers=h).json() == {"errors": []}
    bad = orjson.loads(orjson.dumps(good))
    bad["process"]["process_graph"]["sr"]["process_id"] = "no_such_process"
    errors = http.post("/validation", content=orjson.dumps(bad), headers=h).json()["errors"]
    assert errors and "no_such_process" in errors[0]["message"]


def _job_rows(data: Path) -> list[tuple[str, str]]:
    store = OpenEOStore.for_data_dir(data)
    try:
        return [(job_id, doc["title"]) for job_id, doc, _c, _u in store.list_jobs("alice")]
    finally:
        store.close()


def test_job_create_with_idempotency_key_is_one_job(
    node: tuple[str, Path], http: httpx.Client, auth: dict[str, str]
) -> None:
    """A client that sends its create again (its answer lost) with the same
    ``Idempotency-Key`` gets the same job; another body or a malformed key is refused
    naming the key, and nothing is stored."""
    graph = {"process_graph": {"lc": {"process_id": "load_collection",
             "arguments": {"id": "s2"}, "result": True}}}  # fmt: skip
    body = orjson.dumps({"title": "once", "process": graph})
    before = _job_rows(node[1])
    ids = []
    for _ in range(2):
        resp = http.post("/jobs", content=body, headers={**auth, "Idempotency-Key": "k-1"})
        assert resp.status_code == 201, resp.text
        ids.append(resp.headers["OpenEO-Identifier"])
    assert ids[0] == ids[1]
    assert _job_rows(node[1]) == [*before, (ids[0], "once")]
    stored = _job_rows(node[1])
    other = orjson.dumps({"title": "other", "process": graph})
    msg = _error(http.post("/jobs", content=other, headers={**auth, "Idempotency-Key": "k-1"}),
                 422, "IdempotencyKeyReused")  # fmt: skip
    assert "'k-1'" in msg
    for bad in ("k 1", "k/../1", "k;drop", "x" * 129):
        msg = _error(http.post("/jobs", content=body, headers={**auth, "Idempotency-Key": bad}),
                     400, "BadRequest")  # fmt: skip
        assert repr(bad)[:40] in msg, (bad, msg)
    # another user's same key is another job (keys are per user)
    bob = http.get("/credentials/basic", auth=("bob", TOKEN)).json()["access_token"]
    resp = http.post("/jobs", content=body, headers={"Authorization": f"Bearer basic//{bob}",
                     "Idempotency-Key": "k-1"})  # fmt: skip
    assert resp.status_code == 201 and resp.headers["OpenEO-Identifier"] != ids[0]
    assert _job_rows(node[1]) == stored
