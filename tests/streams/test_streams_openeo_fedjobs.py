"""Batch jobs of another node's data (openeo-aggregator style), on two ``gravitas node``
workers and a real Kafka broker, driven by the official openEO client on the real
Sentinel-2 B04/B08 sample:

* a job created on node B for node A's collection runs on A as A's own Kafka batch job;
  its id on B names A (``a-j-...``); the client creates, starts, polls and downloads it
  through B; the result equals rasterio's NDVI of the original files; B's log shows the
  forwarding and B stores neither the job nor its result;
* hostile: unknown/forged node prefixes, another user's job, a graph spanning nodes,
  unsigned peer calls to A, and a peer whose answers are unsigned or forged: each refused
  with an openEO error body naming the value, and nothing stored on A or B changed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import openeo
import orjson
import pytest
import rasterio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gravitas.agents.registration import LAYER_PREFIX
from gravitas.agents.signing import NodeIdentity
from gravitas.schemas.events import ItemRegistered, SceneAnnounced
from gravitas.schemas.settings import load_settings
from gravitas.streams.broker import KafkaBroker
from gravitas.streams.openeo.peersign import answer_bytes, verify_answer
from tests.fixtures.federation import Federation, FedNode, federation
from tests.fixtures.openeo_node import TOKEN, s2_files
from tests.streams.test_streams_openeo_client import _assert_close, reference_ndvi

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
SMALL = {"west": 12.55, "south": 52.42, "east": 12.65, "north": 52.48}
API = "/openeo/1.2"


def _raw_public(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


HOSTILE = b"HOSTILE-RESULT-BYTES" * 8
"""What the hostile peer answers to a forwarded ``/result``: none of it may reach a client
unless the configured key signed it for that request."""


@dataclass
class HostilePeer:
    """A real HTTP server posing as peer ``m`` (``url``; ``public``: the key configured for
    ``m``, ``key``: its private half). Job calls are answered with a plausible job
    document, forwarded ``/result`` calls with :data:`HOSTILE`, as ``mode`` says:
    ``unsigned``; ``forged`` (another key); ``signed`` (genuinely, the answer recorded in
    ``last``); ``other-request`` (signed for another request's signature); ``replayed``
    (``last`` sent again to a new request); ``stale`` (signed an hour ago); ``altered``
    (signed for other bytes than sent); ``status`` (signed for another HTTP status)."""

    url: str
    public: str
    key: Ed25519PrivateKey
    mode: str = "unsigned"
    last: tuple[dict[str, str], bytes] | None = None

    def answer(self, nonce: str, path: str) -> tuple[dict[str, str], bytes]:
        if path.endswith("/result"):
            body = HOSTILE
        elif "/collections/" in path:  # its description, with a band no catalog item has
            body = orjson.dumps({"id": "sm", "type": "Collection", "title": "FORGED-BANDS",
                                 "cube:dimensions": {"bands": {"values": ["evil"]}}})  # fmt: skip
        else:
            body = orjson.dumps({"id": "j-0123456789abcdef", "status": "finished",
                                 "process": {}, "progress": 100})  # fmt: skip
        if self.mode == "unsigned":
            return {}, body
        if self.mode == "replayed":
            assert self.last is not None
            return self.last
        key = Ed25519PrivateKey.generate() if self.mode == "forged" else self.key
        when = time.time() - (3600 if self.mode == "stale" else 0)
        signed_nonce = (
            base64.b64encode(b"\1" * 64).decode() if self.mode == "other-request" else nonce
        )
        signed_body = body + b"!" if self.mode == "altered" else body
        status = 404 if self.mode == "status" else 200
        stamp = f"{when:.3f}"
        sig = key.sign(answer_bytes("m", stamp, signed_nonce, status, signed_body))
        headers = {"X-Gravitas-Node": "m", "X-Gravitas-Time": stamp,
                   "X-Gravitas-Signature": base64.b64encode(sig).decode()}  # fmt: skip
        if self.mode == "signed":
            self.last = (headers, body)
        return headers, body


@contextmanager
def hostile_peer() -> Iterator[HostilePeer]:
    """The :class:`HostilePeer` ``m``, serving on 127.0.0.1."""
    configured = Ed25519PrivateKey.generate()
    peer = HostilePeer("", _raw_public(configured), configured)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            nonce = self.headers.get("x-gravitas-signature", "")
            headers, body = peer.answer(nonce, self.path)
            self.send_response(200)
            ctype = "image/tiff" if body == HOSTILE else "application/json"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # a collection description, asked with a signed request
            headers, body = peer.answer(self.headers.get("x-gravitas-signature", ""), self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    peer.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def fed(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> AsyncIterator[tuple[Federation, HostilePeer]]:
    s2_dir = str(next(iter(s2_files().values())).parent)
    with hostile_peer() as peer:
        async with federation(
            kafka_broker.bootstrap, tmp_path, ("a", "b"), TOKEN,
            env=lambda _n, d: {"GRAVITAS_ALLOWED_ROOTS": orjson.dumps([s2_dir, str(d)]).decode()},
            extra_peers={"m": {"public_key": peer.public, "api_url": peer.url}},
        ) as f:  # fmt: skip
            yield f, peer


def _url(node: FedNode) -> str:
    return node.edge.rstrip("/")


def _connect(node: FedNode, user: str = "alice") -> openeo.Connection:
    return openeo.connect(f"{_url(node)}{API}").authenticate_basic(user, TOKEN)


def _bearer(node: FedNode, user: str) -> dict[str, str]:
    token = httpx.get(f"{_url(node)}{API}/credentials/basic", auth=(user, TOKEN)).json()
    return {"Authorization": f"Bearer basic//{token['access_token']}"}


def _jobs_state(node: FedNode) -> str:
    """A digest of every job row, run state and log line the node stores."""
    path = node.data_dir / "openeo.sqlite"
    if not path.exists():
        return "none"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = [
            db.execute("SELECT * FROM jobs ORDER BY 1").fetchall(),
            db.execute("SELECT * FROM job_status ORDER BY 1").fetchall(),
            db.execute("SELECT * FROM job_logs ORDER BY 1, 2").fetchall(),
        ]
    finally:
        db.close()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def _job_owners(node: FedNode) -> list[str]:
    """The users of the jobs a node stores (deleted ones left out)."""
    path = node.data_dir / "openeo.sqlite"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [r[0] for r in db.execute("SELECT user FROM jobs WHERE deleted = 0")]
    finally:
        db.close()


def _result_files(node: FedNode) -> list[str]:
    """Names of the job result files in a node's data dir (its local object store)."""
    return sorted(p.name for p in node.data_dir.rglob("*") if "openeo/jobs" in p.as_posix()
                  and p.is_file())  # fmt: skip


async def _announce(node: FedNode, collection: str) -> None:
    scene = SceneAnnounced(
        scene_id=f"T33UUU_20170216T102101_{collection}",
        collection=collection,
        hrefs=[str(p) for p in s2_files().values()],
        layer=collection,
        mode="direct",
    )
    async with node.client.transport.subscription("stac.registrations") as sub:
        await node.client.publish(scene)
        async for rec in sub:
            reg = orjson.loads(rec.value)
            if reg.get("type") == ItemRegistered.TYPE and reg.get("item_id") == scene.scene_id:
                return


async def _wait_listed(node: FedNode, collection: str, backend: str) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as http:
        while True:
            try:
                colls = (await http.get(f"{_url(node)}{API}/collections")).json()["collections"]
                if any(c["id"] == collection and c["federation:backends"] == [backend]
                       for c in colls):  # fmt: skip
                    return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            assert time.monotonic() < deadline, node.worker.output()
            await asyncio.sleep(0.3)


async def _register_as_m(node: FedNode, peer: HostilePeer) -> None:
    """Collection ``sm`` of the hostile peer ``m``, registered as ``m`` signs it (with the
    key configured for it), so B forwards graphs on ``sm`` to ``m``."""
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": "m-sm-1", "collection": "sm",
        "geometry": {"type": "Polygon", "coordinates": [[[12.5, 52.4], [12.7, 52.4],
                     [12.7, 52.5], [12.5, 52.5], [12.5, 52.4]]]},
        "bbox": [12.5, 52.4, 12.7, 52.5],
        "properties": {"datetime": "2017-02-16T10:21:01Z", LAYER_PREFIX: "sm"},
        "links": [], "assets": {},
    }  # fmt: skip
    event = ItemRegistered(
        item_id="m-sm-1", collection="sm", item=item, owning_node="m", api_url=peer.url
    )
    await node.client.publish(NodeIdentity("m", peer.key).sign(event), "stac.registrations")


def _sm_graph() -> bytes:
    return orjson.dumps({"process": {"process_graph": {
        "lc": {"process_id": "load_collection", "arguments": {"id": "sm"}},
        "sr": {"process_id": "save_result", "arguments": {"data": {"from_node": "lc"},
               "format": "GTiff"}, "result": True},
    }}})  # fmt: skip


def _check_forwarded_result_trust(a: FedNode, b: FedNode, peer: HostilePeer) -> None:
    """B forwards a graph on ``m``'s collection to ``m``; it passes on ``m``'s bytes only
    when the key configured for ``m`` signed them for that request, status and body."""
    http = httpx.Client(timeout=30)
    alice = _bearer(b, "alice")
    url = f"{_url(b)}{API}/result"
    before = (_jobs_state(a), _jobs_state(b), _result_files(b))
    peer.mode = "signed"  # the control: a genuine answer is passed on, byte for byte
    resp = http.post(url, content=_sm_graph(), headers=alice)
    assert resp.status_code == 200 and resp.content == HOSTILE, resp.text[:300]
    cases = [("unsigned", "unsigned"), ("forged", "does not verify"),
             ("other-request", "does not verify"), ("replayed", "does not verify"),
             ("altered", "does not verify"), ("status", "does not verify"),
             ("stale", "off this clock")]  # fmt: skip
    for peer.mode, why in cases:
        resp = http.post(url, content=_sm_graph(), headers=alice)
        _refused(resp, 502, "Internal", "'m'", "/result", why)
        assert b"HOSTILE" not in resp.content, peer.mode  # none of its bytes
    assert (_jobs_state(a), _jobs_state(b), _result_files(b)) == before
    # the owner's description of ``sm`` is used only when ``m`` signed it for B's request;
    # otherwise B describes it from the federated catalog (signed registrations only)
    for peer.mode in ("signed", "unsigned", "forged", "replayed", "stale", "status"):
        doc = http.get(f"{_url(b)}{API}/collections/sm", headers=alice).json()
        assert doc["id"] == "sm" and doc["federation:backends"] == ["m"], doc
        assert (doc.get("title") == "FORGED-BANDS") == (peer.mode == "signed"), peer.mode


def _check_idempotent_create(a: FedNode, b: FedNode, tmp_path: Path) -> None:
    """A create sent to A twice with one idempotency key (its answer lost, sent again)
    makes one job; the key with another body, or a malformed key, is refused naming it."""
    http = httpx.Client(timeout=30)
    b_id = NodeIdentity.load(load_settings(data_dir=tmp_path / "b", node_id="b"))
    a_key = NodeIdentity.load(load_settings(data_dir=tmp_path / "a", node_id="a")).public_key
    path = f"{API}/federation/jobs"
    graph = {"process": {"process_graph": orjson.loads(_sm_graph())["process"]["process_graph"]
             | {"lc": {"process_id": "load_collection", "arguments": {"id": "s2"}}}}}  # fmt: skip

    def send(**fields: object) -> httpx.Response:
        body = orjson.dumps({"op": "create", "user": "carol", **fields})
        headers = b_id.sign_request(path, body)  # a fresh signature per send, as B's retry
        resp = http.post(f"{_url(a)}{path}", content=body, headers=headers)
        verify_answer(resp.headers, headers["X-Gravitas-Signature"], resp.status_code,
                      resp.content, "a", a_key)  # fmt: skip
        return resp

    first = send(body={**graph, "title": "once"}, idempotency_key="b-retry-1")
    again = send(body={**graph, "title": "once"}, idempotency_key="b-retry-1")
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert first.json()["job_id"] == again.json()["job_id"]
    assert _job_owners(a).count("b~carol") == 1
    before = (_jobs_state(a), _jobs_state(b))
    resp = send(body={**graph, "title": "other"}, idempotency_key="b-retry-1")
    _refused(resp, 422, "IdempotencyKeyReused", "'b-retry-1'")
    for bad in ("", "a b;drop", "x" * 129, 7):
        _refused(send(body=graph, idempotency_key=bad), 400, "BadRequest", repr(bad)[:40])
    _refused(send(body=graph), 400, "BadRequest", "None")  # no key: refused too
    assert (_jobs_state(a), _jobs_state(b)) == before

    # a client that sends its create to B again with its Idempotency-Key: one job on A
    alice = _bearer(b, "alice")
    jobs = f"{_url(b)}{API}/jobs"
    ids = []
    for _ in range(2):
        resp = http.post(jobs, content=orjson.dumps(graph), headers={**alice,
                         "Idempotency-Key": "client-7"})  # fmt: skip
        assert resp.status_code == 201, resp.text
        ids.append(resp.headers["OpenEO-Identifier"])
    assert ids[0] == ids[1] and ids[0].startswith("a-j-"), ids
    assert _job_owners(a).count("b~alice") == 1
    before = (_jobs_state(a), _jobs_state(b))
    other = orjson.dumps({**graph, "title": "changed"})
    resp = http.post(jobs, content=other, headers={**alice, "Idempotency-Key": "client-7"})
    _refused(resp, 422, "IdempotencyKeyReused", "'client-7'")
    resp = http.post(jobs, content=other, headers={**alice, "Idempotency-Key": "no way"})
    _refused(resp, 400, "BadRequest", "'no way'")
    assert (_jobs_state(a), _jobs_state(b)) == before


def _ndvi(con: openeo.Connection) -> openeo.DataCube:
    cube = con.load_collection(
        "s2", spatial_extent=SMALL, temporal_extent=["2017-02-01", "2017-03-01"],
        bands=["B04", "B08"],
    )  # fmt: skip
    return cube.ndvi().reduce_dimension(dimension="t", reducer="median")


def _refused(resp: httpx.Response, status: int, code: str, *named: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) >= {"id", "code", "message", "links"} and body["code"] == code, body
    for value in named:
        assert value in body["message"], (value, body)


async def test_job_on_b_for_a_data_runs_on_a(
    fed: tuple[Federation, HostilePeer], tmp_path: Path
) -> None:
    f, peer = fed
    a, b = f.nodes["a"], f.nodes["b"]
    await asyncio.gather(_announce(a, "s2"), _announce(b, "s2b"), _register_as_m(a, peer))
    await _wait_listed(b, "s2", "a")
    await _wait_listed(a, "s2b", "b")
    await _wait_listed(b, "sm", "m")

    def run() -> tuple[openeo.BatchJob, Path]:
        job = _ndvi(_connect(b)).save_result(format="GTiff").create_job(title="ndvi via b")
        job.start_and_wait(max_poll_interval=1, print=lambda *_: None)
        out = tmp_path / "out"
        job.get_results().download_files(out)
        return job, out / "result.tif"

    job, tif = await asyncio.to_thread(run)
    assert job.job_id.startswith("a-j-"), job.job_id
    with rasterio.open(tif) as ds:
        got, transform = ds.read(1).astype("float32"), ds.transform
    _assert_close(got, reference_ndvi(transform, got.shape))  # independent: rasterio
    logs = await asyncio.to_thread(job.logs)
    assert any("started on node a" in e["message"] for e in logs), logs
    assert logs[-1]["message"].startswith("finished"), logs
    log_b = (tmp_path / "b.log").read_text(errors="replace")
    assert f"{job.job_id} of alice created on node a" in log_b
    assert f"{job.job_id} result from node a:" in log_b
    assert "started for b~alice" in (tmp_path / "a.log").read_text(errors="replace")
    # the result is stored on A only; B passed its bytes on
    assert _result_files(a) == [f"{tif.name}"] and _result_files(b) == []
    http = httpx.Client(timeout=30)
    alice, bob = _bearer(b, "alice"), _bearer(b, "bob")
    listed = http.get(f"{_url(b)}{API}/jobs", headers=alice).json()
    assert [j["id"] for j in listed["jobs"]] == [job.job_id]
    assert listed["federation:missing"] == ["m"]  # the hostile peer's answer is not used
    job_url = f"{_url(b)}{API}/jobs/{job.job_id}"
    before = (_jobs_state(a), _jobs_state(b))
    assert _job_owners(a) == ["b~alice"] and _job_owners(b) == []  # B stores no job

    # another user of B: no job of theirs, whatever the call
    calls = [("GET", ""), ("DELETE", ""), ("GET", "/results"), ("DELETE", "/results"),
             ("POST", "/results"), ("GET", "/logs")]  # fmt: skip
    for method, suffix in calls:
        resp = http.request(method, job_url + suffix, headers=bob)
        _refused(resp, 404, "JobNotFound", job.job_id)
    resp = http.patch(job_url, content=orjson.dumps({"title": "mine"}), headers=bob)
    _refused(resp, 404, "JobNotFound", job.job_id)
    assert http.get(f"{_url(b)}{API}/jobs", headers=bob).json()["jobs"] == []
    # unknown or forged node prefixes, a job A does not have, ids that are no ids
    for bad in ("zz-j-0123456789abcdef", "b-j-0123456789abcdef", "a-j-ffffffffffffffff",
                "a-j-0123", "a-..-j-0123456789abcdef"):  # fmt: skip
        _refused(http.get(f"{_url(b)}{API}/jobs/{bad}", headers=alice), 404, "JobNotFound", bad)
    # a download link whose signature or user was changed
    results = http.get(job_url + "/results", headers=alice).json()
    href = results["assets"]["result.tif"]["href"]
    assert href.startswith(_url(b)) and "&u=alice" in href
    _refused(http.get(href.replace("&u=alice", "&u=bob")), 404, "NotFound", "invalid")
    # a graph spanning nodes (s2 on a, s2b on b) is refused naming both
    span = {"process": {"process_graph": {
        "l1": {"process_id": "load_collection", "arguments": {"id": "s2"}},
        "l2": {"process_id": "load_collection", "arguments": {"id": "s2b"}},
        "mc": {"process_id": "merge_cubes", "arguments": {"cube1": {"from_node": "l1"},
               "cube2": {"from_node": "l2"}}},
        "sr": {"process_id": "save_result", "arguments": {"data": {"from_node": "mc"},
               "format": "GTiff"}, "result": True},
    }}}  # fmt: skip
    resp = http.post(f"{_url(b)}{API}/jobs", content=orjson.dumps(span), headers=alice)
    _refused(resp, 400, "ProcessGraphInvalid", "s2 on a", "s2b on b")
    resp = http.patch(job_url, content=orjson.dumps(span), headers=alice)
    _refused(resp, 400, "ProcessGraphInvalid", "s2 on a", "s2b on b")
    # calls to A's peer endpoint that no configured peer signed
    peer_url = f"{_url(a)}{API}/federation/jobs"
    call = orjson.dumps({"op": "delete", "user": "alice", "job": job.job_id[2:]})
    _refused(http.post(peer_url, content=call, headers=_bearer(a, "alice")), 403,
             "TokenInvalid", "no peer signature")  # fmt: skip
    forged = {"X-Gravitas-Node": "b", "X-Gravitas-Time": f"{time.time():.3f}",
              "X-Gravitas-Signature": base64.b64encode(b"\0" * 64).decode()}  # fmt: skip
    _refused(http.post(peer_url, content=call, headers=forged), 403, "TokenInvalid",
             "'b'", "does not verify")  # fmt: skip
    # a peer whose answers are unsigned, then signed by a key not configured for it
    for peer.mode, why in (("unsigned", "unsigned"), ("forged", "does not verify")):
        for method, suffix in (("GET", ""), ("POST", "/results"), ("DELETE", "")):
            resp = http.request(method, f"{_url(b)}{API}/jobs/m-j-0123456789abcdef{suffix}",
                                headers=alice)  # fmt: skip
            _refused(resp, 502, "Internal", "'m'", why)
    assert (_jobs_state(a), _jobs_state(b)) == before  # nothing stored changed
    assert http.get(job_url, headers=alice).json()["status"] == "finished"

    # patch and cancel through B reach A's job (cancelling a finished job keeps it finished)
    resp = http.patch(job_url, content=orjson.dumps({"title": "renamed"}), headers=alice)
    assert resp.status_code == 204, resp.text
    assert http.get(job_url, headers=alice).json()["title"] == "renamed"
    await asyncio.to_thread(job.stop)
    assert await asyncio.to_thread(job.status) == "finished"

    # delete through B deletes A's job
    await asyncio.to_thread(job.delete)
    _refused(http.get(job_url, headers=alice), 404, "JobNotFound", job.job_id)
    assert http.get(f"{_url(b)}{API}/jobs", headers=alice).json()["jobs"] == []
    assert _job_owners(a) == []

    # a synchronous graph on A's data sent to B runs on A; A's signed answer is passed on
    def sync() -> Path:
        out = tmp_path / "sync.tif"
        _ndvi(_connect(b)).download(out, format="GTiff")
        return out

    with rasterio.open(await asyncio.to_thread(sync)) as ds:
        got, transform = ds.read(1).astype("float32"), ds.transform
    _assert_close(got, reference_ndvi(transform, got.shape))
    _check_forwarded_result_trust(a, b, peer)
    _check_idempotent_create(a, b, tmp_path)
