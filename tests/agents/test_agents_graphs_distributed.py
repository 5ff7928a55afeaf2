"""Scale-out: the same process graph on a real dask.distributed ``LocalCluster`` (two
worker processes reading blocks from the shared S3 block store) gives the same bytes as
the threaded scheduler in the node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gravitas.agents import graphs
from gravitas.agents.graphs import handles
from gravitas.agents.graphs.scheduler import client_for, close_clients
from gravitas.agents.services import NodeServices
from tests.agents.graphs_data import (
    LANDSAT_BOX,
    graph,
    ingest_landsat,
    node,
    reducer,
    ref,
    services_for,
)

pytestmark = [pytest.mark.s3, pytest.mark.slow]


@pytest.fixture
def services(s3_server: Any, tmp_path: Path) -> Iterator[NodeServices]:
    s = services_for(tmp_path, "s3", s3_server)
    ingest_landsat(s, 2)
    yield s
    close_clients()
    s.close()


def _opened_stores() -> int:
    return len(handles._OPEN)


def test_local_cluster_of_two_processes_equals_threads(services: NodeServices) -> None:
    box = dict(zip(("west", "south", "east", "north"), LANDSAT_BOX, strict=True))
    g = graph(
        load=node("load_collection", id="landsat", spatial_extent=box, temporal_extent=None,
                  bands=["red", "nir"]),
        ndvi=node("ndvi", data=ref("load")),
        median=node("reduce_dimension", data=ref("ndvi"), dimension="t",
                    reducer=reducer("median")),
        save=node("save_result", data=ref("median"), format="GTiff"),
    )  # fmt: skip
    threaded = graphs.execute(g, services)
    spread = graphs.execute(g, services, scheduler="local-cluster:2")
    assert spread.details["scheduler"] == "local-cluster:2"
    assert spread.data == threaded.data
    client = client_for("local-cluster:2")
    workers = client.run(_opened_stores)
    assert len(workers) == 2
    assert sum(workers.values()) >= 1  # the workers opened the S3 store themselves
    import os

    pids = client.run(os.getpid)
    assert os.getpid() not in pids.values()  # separate processes
