"""Scale-out and faults on real services: ``gravitas node`` worker processes on Apache
Kafka with the S3 block and object stores (SeaweedFS) and the pgstac catalog
(PostgreSQL), running a fixed workload (overlapping Direct Import tiles, a Lazy
Onboarding scene and a pixel search that needs it).

Every run must end in the outcome of one worker without faults: the same block-store
bytes, object-store bytes, item ids, versions and ``registered_at``, and one answer to
the search. The services are this module's own, so restarting them disturbs no other test.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from gravitas.schemas.base import Event
from gravitas.storage.catalog.pg_cluster import PostgresCluster
from gravitas.storage.s3server import SeaweedS3
from gravitas.streams.broker import KafkaBroker
from tests.fixtures.faultrequests import (
    DatacubeRun,
    MethaneRun,
    RequestRun,
    Step,
    datacube_workload,
    methane_workload,
    stage,
)
from tests.fixtures.faultrun import TEMPLATE, Outcome, Run, Services, run_workload, workload

pytestmark = [pytest.mark.kafka, pytest.mark.fault, pytest.mark.slow]

DATES = 6
"""Landsat dates of west/east tiles: 12 Direct Import scenes."""
SEED = 20261203
KILLS = 20

_baseline: dict[str, Outcome] = {}


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    root = tmp_path_factory.mktemp("fault-services")
    broker = KafkaBroker(data_dir=root / "kafka").start()
    s3 = SeaweedS3().start()
    pg = PostgresCluster().start()
    try:
        pg.create_database(TEMPLATE)
        yield Services(broker, s3, pg)
    finally:
        pg.stop()
        s3.stop()
        broker.stop()
        shutil_rmtree(root / "kafka")


def shutil_rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fault-inputs")


@pytest.fixture(scope="module")
def events(inputs: Path) -> list[Event]:
    return workload(inputs, DATES)


def _complete(o: Outcome) -> bool:
    return len(o.items) == 2 * DATES + 1 and all(i[4] for i in o.items) and o.answers >= 1


async def baseline(services: Services, tmp: Path, events: list[Event], inputs: Path) -> Outcome:
    """One worker, no faults; settled when complete and unchanged over one more poll."""
    if "one" not in _baseline:
        seen: list[Outcome] = []

        def done(o: Outcome) -> bool:
            seen.append(o)
            return _complete(o) and len(seen) > 1 and seen[-2] == o

        outcome, stats = await run_workload(services, tmp, "base", events, inputs, done=done)
        assert outcome.answers == 1 and outcome.matches > 0, outcome.summary()
        # registered (v1), then flagged onboarded when the pyramids are built (v2)
        assert all(i[2] == 2 and i[4] for i in outcome.items), outcome.items
        print(f"baseline (1 worker, no faults): {stats.seconds:.1f}s {outcome.summary()}")
        _baseline["one"] = outcome
    return _baseline["one"]


def _same_as(expected: Outcome):  # type: ignore[no-untyped-def]
    def done(o: Outcome) -> bool:
        return o == expected

    return done


async def test_three_workers_on_s3_and_pgstac_end_as_one(
    services: Services, tmp_path: Path, events: list[Event], inputs: Path
) -> None:
    expected = await baseline(services, tmp_path, events, inputs)
    outcome, stats = await run_workload(
        services, tmp_path, "three", events, inputs, workers=3, done=_same_as(expected)
    )
    assert outcome == expected
    print(f"3 workers: {stats.seconds:.1f}s, same outcome as 1 worker")


async def test_sigkill_at_seeded_points_then_restart_ends_as_without_faults(
    services: Services, tmp_path: Path, events: list[Event], inputs: Path
) -> None:
    expected = await baseline(services, tmp_path, events, inputs)
    rng = random.Random(SEED)
    # output records of a clean run: about 110 (blocks, overviews, registrations, progress)
    points = sorted(rng.sample(range(1, 100), KILLS))

    async def kill(run: Run) -> None:
        await run.kill_on_progress(points, rng)

    outcome, stats = await run_workload(
        services,
        tmp_path,
        "kill",
        events,
        inputs,
        workers=2,
        done=_same_as(expected),
        during=kill,
        timeout=300,
    )
    assert outcome == expected
    assert stats.kills == KILLS
    print(
        f"SIGKILL: {stats.kills} kill points at output records {stats.fault_records} "
        f"({stats.faults_before_answer} before the search was answered), "
        f"{stats.restarts} restarts, {stats.seconds:.1f}s"
    )


async def _restarted_run(
    services: Services, tmp_path: Path, events: list[Event], inputs: Path, names: list[str]
) -> None:
    expected = await baseline(services, tmp_path, events, inputs)

    def kafka() -> None:
        services.broker.stop()
        services.broker.start()

    restarts: dict[str, Callable[[], object]] = {
        "kafka": kafka,
        "s3": services.s3.restart,
        "postgres": services.pg.restart,
    }

    async def restart_services(run: Run) -> None:
        async def restart(name: str) -> None:
            await asyncio.to_thread(restarts[name])
            run.stats.service_restarts.append(name)

        points = [8, 24, 40][: len(names)]
        await run.at_progress(points, [partial(restart, n) for n in names])

    outcome, stats = await run_workload(
        services,
        tmp_path,
        "restart-" + "-".join(names),
        events,
        inputs,
        workers=1,
        done=_same_as(expected),
        during=restart_services,
        timeout=300,
    )
    assert outcome == expected
    assert stats.service_restarts == names
    print(
        f"service restarts {stats.service_restarts} at output records {stats.fault_records} "
        f"({stats.faults_before_answer} before the search was answered): "
        f"{stats.restarts} worker restarts, {stats.seconds:.1f}s"
    )


async def test_broker_and_s3_restarted_mid_stream(
    services: Services, tmp_path: Path, events: list[Event], inputs: Path
) -> None:
    await _restarted_run(services, tmp_path, events, inputs, ["kafka", "s3"])


async def test_postgres_restarted_mid_stream(
    services: Services, tmp_path: Path, events: list[Event], inputs: Path
) -> None:
    await _restarted_run(services, tmp_path, events, inputs, ["postgres"])


async def _request_kill_points(
    services: Services,
    tmp_path: Path,
    events: list[Event],
    inputs: Path,
    run_type: type[RequestRun],
    steps: list[Step],
) -> None:
    """A clean run of one request and, at the same time (their own topics, prefixes and
    databases), one whose worker is killed at each step boundary: same outcome."""
    name = run_type.__name__.lower()

    async def kill(run: Run) -> None:
        assert isinstance(run, RequestRun)
        await run.kill_at_steps()

    killed = type(f"{run_type.__name__}Killed", (run_type,), {"kill_steps": tuple(steps)})

    (expected, base), (outcome, stats) = await asyncio.gather(
        run_workload(
            services, tmp_path, f"{name}-base", events, inputs, done=_settled_request(),
            run_type=run_type, timeout=300,
        ),
        run_workload(
            services, tmp_path, f"{name}-kill", events, inputs, done=_settled_request(),
            during=kill, run_type=killed, timeout=300,
        ),
    )  # fmt: skip
    assert expected.answers >= 1 and expected.answer, expected.summary()
    assert outcome.docs.splitlines() == expected.docs.splitlines()
    assert outcome == expected, (outcome.summary(), expected.summary())
    assert stats.kills == len(steps)
    print(
        f"{name}: clean {base.seconds:.1f}s {expected.summary()}; {stats.kills} kill points "
        f"({stats.faults_before_answer} before the answer), {stats.restarts} restarts, "
        f"{stats.seconds:.1f}s"
    )


def _settled_request() -> Callable[[Outcome], bool]:
    """Answered, unchanged over one more poll (the scenes were onboarded before the
    request was sent; the request's own items carry no onboarding flag)."""
    seen: list[Outcome] = []

    def done(o: Outcome) -> bool:
        seen.append(o)
        return o.answers >= 1 and len(seen) > 1 and seen[-2] == o

    return done


async def test_sigkill_at_each_datacube_step_ends_as_without_faults(
    services: Services, tmp_path: Path, inputs: Path
) -> None:
    # before retrieving, while writing (Zarr chunks, quicklooks), after the catalog
    # registration (before it is published and answered)
    steps = [stage("retrieve"), stage("write"), stage("done")]
    await _request_kill_points(services, tmp_path, datacube_workload(), inputs, DatacubeRun, steps)


async def test_sigkill_at_each_methane_step_ends_as_without_faults(
    services: Services, tmp_path: Path, inputs: Path
) -> None:
    from gravitas.storage.sampledata.emit_scene import Plume, make_emit_scene

    scene = inputs / "EMIT_L1B_RAD_001_20220815T042838_2222703_003.nc"
    if not scene.exists():
        plumes = (Plume(77.0, 19.0, 6.0, 2000.0), Plume(179.0, 45.0, 6.0, 3000.0))
        make_emit_scene(scene, 256, 64, plumes, seed=0)
    # retrieving, while the COG and plumes are written, after they are (staging the
    # pixel layer), after the catalog registration (before it is published and answered)
    steps = [stage("retrieval"), stage("writing"), stage("indexing"), stage("indexing", 1.0)]
    await _request_kill_points(
        services, tmp_path, methane_workload(scene), inputs, MethaneRun, steps
    )
