"""Hostile and broken process graphs: each is refused with its openEO error class, code
and status, the message names the node and argument, ``validate`` lists the same
problems, and nothing the node stores changes. Also: a Featurize request carrying a
process graph is answered through the discovery agent (values, a raster by reference,
failures named)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gravitas.agents import graphs
from gravitas.agents.discovery import DiscoveryAgent
from gravitas.agents.graphs import errors as E
from gravitas.agents.results import RESULTS_PREFIX
from gravitas.agents.services import NodeServices
from gravitas.schemas.events import FeatureResult, Featurize
from gravitas.schemas.settings import load_settings
from gravitas.streams.node import EmbeddedNode
from tests.agents.graphs_data import (
    LANDSAT_BOX,
    graph,
    ingest_landsat,
    node,
    reducer,
    ref,
    services_for,
)
from tests.fixtures.state import fingerprint

BOX = dict(zip(("west", "south", "east", "north"), LANDSAT_BOX, strict=True))


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeServices]:
    s = services_for(tmp_path_factory.mktemp("hostile"), "rocksdb")
    ingest_landsat(s, 3)
    yield s
    s.close()


def load(**more: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"id": "landsat", "spatial_extent": BOX, "temporal_extent": None}
    args.update(more)
    return node("load_collection", **args)


def good(**load_args: Any) -> dict[str, Any]:
    return graph(
        load=load(**load_args),
        mean=node("reduce_dimension", data=ref("load"), dimension="t", reducer=reducer("mean")),
        save=node("save_result", data=ref("mean"), format="GTiff"),
    )


def cyc() -> dict[str, Any]:
    return {
        "a": node("absolute", x=ref("b")),
        "b": {**node("absolute", x=ref("a")), "result": True},
    }


DEEP: Any = 1
for _ in range(30):
    DEEP = [DEEP]

# (graph, error class, code, words the message must contain)
STRUCTURE: list[tuple[Any, type[E.GraphError], str, list[str]]] = [
    (None, E.ProcessGraphMissing, "ProcessGraphMissing", ["no process graph"]),
    ({}, E.ProcessGraphMissing, "ProcessGraphMissing", ["no process graph"]),
    ({"process_graph": {}}, E.ProcessGraphMissing, "ProcessGraphMissing", ["empty"]),
    ({"a": "load_collection"}, E.ProcessGraphInvalid, "ProcessGraphInvalid", ["'a'", "object"]),
    ({"a": {"arguments": {}, "result": True}}, E.ProcessGraphInvalid, "ProcessGraphInvalid",
     ["'a'", "process_id"]),
    ({"a": node("absolute", x=1)}, E.ProcessGraphInvalid, "ProcessGraphInvalid",
     ["result: true"]),
    (cyc(), E.ProcessGraphInvalid, "ProcessGraphInvalid", ["cycle", "a -> b -> a"]),
    (graph(a=node("absolute", x=ref("ghost"))), E.ProcessGraphInvalid, "ProcessGraphInvalid",
     ["'a'", "'x'", "ghost"]),
    (graph(a=node("rm_rf", x=1)), E.ProcessUnsupported, "ProcessUnsupported", ["'a'", "rm_rf"]),
    (graph(a=node("load_stac", url="file:///etc/passwd")), E.ProcessUnsupported,
     "ProcessUnsupported", ["load_stac"]),
    (graph(a=node("run_udf", data=1, udf="import os", runtime="Python")), E.ProcessUnsupported,
     "ProcessUnsupported", ["run_udf"]),
    (graph(a=node("absolute", x=1, evil=2)), E.ProcessParameterUnsupported,
     "ProcessParameterUnsupported", ["'a'", "'evil'"]),
    (graph(a=node("absolute")), E.ProcessParameterMissing, "ProcessParameterMissing",
     ["'a'", "'x'"]),
    (graph(load=load(), r=node("reduce_dimension", data=ref("load"), dimension="t",
                               reducer=reducer("os_system"))),
     E.ProcessUnsupported, "ProcessUnsupported", ["os_system"]),
    (graph(load=load(), s=node("save_result", data=ref("load"), format="PNG")),
     E.FormatUnsupported, "FormatUnsupported", ["'s'", "'format'", "PNG"]),
    (graph(a=node("absolute", x=DEEP)),
     E.ProcessGraphInvalid, "ProcessGraphInvalid", ["nest deeper"]),
    ({f"n{i}": node("absolute", x=i) for i in range(600)}, E.ProcessGraphInvalid,
     "ProcessGraphInvalid", ["more than 500 nodes"]),
]  # fmt: skip

DATA: list[tuple[Any, type[E.GraphError], str, list[str]]] = [
    (good(id="nope"), E.CollectionNotFound, "CollectionNotFound", ["'load'", "'id'", "nope",
                                                                  "landsat"]),
    (good(id=42), E.ProcessArgumentInvalid, "ProcessArgumentInvalid", ["'load'", "'id'"]),
    (good(bands=["b9"]), E.BandNotFound, "ProcessArgumentInvalid", ["'bands'", "b9", "b3"]),
    (good(bands="b3"), E.ProcessArgumentInvalid, "ProcessArgumentInvalid", ["'bands'"]),
    (good(spatial_extent={"west": "x", "south": 0, "east": 1, "north": 1}),
     E.ProcessArgumentInvalid, "ProcessArgumentInvalid", ["'spatial_extent'"]),
    (good(spatial_extent={"west": 10, "south": 0, "east": 1, "north": 1}),
     E.ProcessArgumentInvalid, "ProcessArgumentInvalid", ["'spatial_extent'", "west < east"]),
    (good(temporal_extent=["1990-01-01", "1991-01-01"]), E.NoDataForUpdate, "NoDataForUpdate",
     ["'load'", "'temporal_extent'"]),
    (good(spatial_extent={"west": -150.0, "south": 10.0, "east": -149.9, "north": 10.1}),
     E.NoDataForUpdate, "NoDataForUpdate", ["nodata"]),
    (good(properties={"eo:cloud_cover": {"process_graph": {"c": {
        "process_id": "lte", "arguments": {"x": {"from_parameter": "value"}, "y": 50},
        "result": True}}}}), E.ProcessArgumentInvalid,
     "ProcessArgumentInvalid", ["properties"]),
    (graph(load=load(), r=node("reduce_dimension", data=ref("load"), dimension="nope",
                               reducer=reducer("mean")),
           s=node("save_result", data=ref("r"), format="GTiff")),
     E.ProcessArgumentInvalid, "DimensionNotAvailable", ["'r'", "nope"]),
    (graph(load=load(), n=node("ndvi", data=ref("load"), nir="b5", red="b9"),
           s=node("save_result", data=ref("n"), format="GTiff")),
     E.ProcessArgumentInvalid, "RedBandAmbiguous", ["'n'"]),
    (graph(a=node("add", x="one", y=2)), E.ProcessArgumentInvalid, "ProcessArgumentInvalid",
     ["'a'", "add"]),
    (graph(load=load(), z=node("aggregate_spatial", data=ref("load"),
                               geometries={"type": "Point", "coordinates": [0, 0]},
                               reducer=reducer("mean"))),
     E.ProcessArgumentInvalid, "ProcessArgumentInvalid", ["'z'", "'geometries'"]),
    (graph(load=load(), s=node("save_result", data=ref("load"), format=7)),
     E.ProcessArgumentInvalid, "ProcessArgumentInvalid", ["format"]),
]  # fmt: skip


@pytest.mark.parametrize("case", STRUCTURE + DATA, ids=lambda c: f"{c[2]}")
def test_bad_graphs_refused_naming_node_and_argument(
    services: NodeServices, case: tuple[Any, type[E.GraphError], str, list[str]]
) -> None:
    pg, cls, code, words = case
    before = fingerprint(services)
    with pytest.raises(E.GraphError) as info:
        graphs.execute(pg, services)
    exc = info.value
    assert isinstance(exc, cls), f"{type(exc).__name__}: {exc}"
    assert exc.code == code and exc.status in (400, 404)
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    for word in words:
        assert word in text, text
    assert exc.to_openeo() == {"code": code, "message": text}
    if case in STRUCTURE:
        problems = graphs.validate(pg)
        assert problems and problems[0].code == code and problems[0].message == text
    assert fingerprint(services) == before


def test_limits_and_scheduler_settings(services: NodeServices, tmp_path: Path) -> None:
    tight = NodeServices(services.settings.model_copy(update={"graph_max_bytes": 2048}))
    tight.__dict__["block_store"] = services.block_store
    with pytest.raises(E.ResourceLimitExceeded, match="GRAVITAS_GRAPH_MAX_BYTES"):
        graphs.execute(good(), tight)
    slow = NodeServices(services.settings.model_copy(update={"graph_max_seconds": 1e-6}))
    slow.__dict__["block_store"] = services.block_store
    with pytest.raises(E.ResourceLimitExceeded, match="GRAVITAS_GRAPH_MAX_SECONDS"):
        graphs.execute(good(), slow)
    with pytest.raises(E.GraphError, match="local-cluster:N"):
        graphs.execute(good(), services, scheduler="ftp://evil")
    with pytest.raises(E.GraphError, match="S3 block store"):
        graphs.execute(good(), services, scheduler="local-cluster:1")
    # the sync scheduler gives the same bytes as the threaded default
    a = graphs.execute(good(), services)
    b = graphs.execute(good(), services, scheduler="sync")
    assert a.data == b.data
    assert b.details["scheduler"] == "sync"
    assert graphs.validate(good()) == []


def test_processes_and_file_formats_match_the_engine() -> None:
    specs = graphs.processes()
    ids = [p["id"] for p in specs]
    assert ids == sorted(set(ids)) and len(ids) > 100
    for must in ("load_collection", "save_result", "aggregate_spatial", "ndvi",
                 "reduce_dimension", "quantiles", "median", "filter_bbox"):  # fmt: skip
        assert must in ids
    for never in ("load_stac", "run_udf", "load_url", "save_ml_model"):
        assert never not in ids
    for spec in specs:
        assert {"id", "description", "parameters", "returns"} <= set(spec), spec["id"]
    formats = graphs.file_formats()
    assert set(formats["output"]) == {"GTiff", "netCDF", "JSON", "ZARR"}


async def test_featurize_with_a_process_graph_through_the_discovery_agent(
    tmp_path: Path,
) -> None:
    settings = load_settings(data_dir=tmp_path / "node", http_port=0)
    async with EmbeddedNode(settings, agents=[DiscoveryAgent()], serve_http=False) as n:
        ingest_landsat(n.services, 3)
        before = fingerprint(n.services)
        client = n.client()
        window = {
            "start": datetime(2008, 1, 1, tzinfo=UTC),
            "end": datetime(2009, 1, 1, tzinfo=UTC),
        }
        rect = {"type": "Polygon", "coordinates": [[[BOX["west"], BOX["south"]],
                [BOX["east"], BOX["south"]], [BOX["east"], BOX["north"]],
                [BOX["west"], BOX["north"]], [BOX["west"], BOX["south"]]]]}  # fmt: skip
        zonal = graph(
            load=load(bands=["b4"]),
            z=node("aggregate_spatial", data=ref("load"), geometries=rect, reducer=reducer("max")),
            s=node("save_result", data=ref("z"), format="JSON"),
        )
        req = Featurize(request_id=f"g-{uuid.uuid4().hex[:8]}", process_graph=zonal,
                        bbox=LANDSAT_BOX, time=window)  # fmt: skip
        reply = await client.request(req, "discovery.results", 30)
        assert isinstance(reply, FeatureResult) and reply.status == "ok", reply.error
        direct = json.loads(graphs.execute(zonal, n.services).data)
        want = {
            t: row[0]
            for t, row in zip(direct["coords"]["t"], direct["data"][0], strict=True)
            if row[0] is not None  # a date cloudy over the whole box is left out
        }
        assert len(want) >= 2
        assert {t: v["0/b4"] for t, v in reply.values.items()} == want

        raster = Featurize(request_id=f"g-{uuid.uuid4().hex[:8]}", process_graph=good(),
                           bbox=LANDSAT_BOX, time=window)  # fmt: skip
        reply = await client.request(raster, "discovery.results", 120)
        assert (
            reply.status == "ok" and reply.result_ref == f"{RESULTS_PREFIX}{raster.request_id}.tif"
        )
        body = n.services.object_store.get_bytes(reply.result_ref)
        assert len(body) == reply.result_bytes and body == graphs.execute(good(), n.services).data

        bad = Featurize(request_id=f"g-{uuid.uuid4().hex[:8]}", process_graph=good(id="nope"),
                        bbox=LANDSAT_BOX, time=window)  # fmt: skip
        reply = await client.request(bad, "discovery.results", 60)
        assert reply.status == "failed" and "CollectionNotFound" in (reply.error or "")
        assert "nope" in (reply.error or "")
        with pytest.raises(ValueError, match="either expression"):
            Featurize(request_id="x-1", bbox=LANDSAT_BOX, time=window)
        assert n.services.object_store.list(RESULTS_PREFIX)
        del before  # the results written by reference are the only change (checked above)


def test_docs_list_exactly_the_supported_processes() -> None:
    text = (Path(__file__).parents[2] / "docs" / "compute.md").read_text()
    block = text.split("<!-- processes:start -->")[1].split("<!-- processes:end -->")[0]
    listed = [p.strip().strip("`") for p in block.replace("\n", " ").split(",") if p.strip()]
    assert listed == [p["id"] for p in graphs.processes()]
