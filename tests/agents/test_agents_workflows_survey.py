"""The methane-survey template on a semi-synthetic EMIT scene (real spectra, real CH4
LUT): scenes found in the catalog, matched filter and plumes per scene equal to the
retrieval run by hand, products registered in STAC with their provenance (processing
extension + derived_from links, valid against the offline STAC schemas); a replayed run
leaves the same ids, bytes and provenance; hostile inputs refused naming the value."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from gravitas.agents.ingest import IngestAgent
from gravitas.agents.methane_retrieval import retrieve_scene, write_cog
from gravitas.agents.modules.agent import ModuleAgent, run_python_step
from gravitas.agents.modules.plume_patches import ZARR
from gravitas.agents.modules.survey import PRODUCTS
from gravitas.agents.workflows.agent import WorkflowAgent, WorkflowIntakeAgent
from gravitas.agents.workflows.shipped import template_spec
from gravitas.schemas.events import SceneAnnounced
from gravitas.schemas.settings import load_settings
from gravitas.schemas.workflows import StepRequested, WorkflowStatus
from gravitas.storage.catalog.base import SearchParams
from gravitas.storage.readers.emit_extent import emit_extent
from gravitas.storage.sampledata.emit_scene import Plume, make_emit_scene
from gravitas.streams.node import EmbeddedNode
from tests.fixtures.stac_api import offline_schemas, schema_dir

ROWS, COLS = 64, 48
PLUMES = (Plume(20.0, 14.0, 4.0, 2500.0), Plume(44.0, 32.0, 4.0, 3000.0))
WHEN = datetime(2024, 5, 1, 17, 0, tzinfo=UTC)


def agents() -> list[Any]:
    return [IngestAgent(), ModuleAgent(), WorkflowIntakeAgent(), WorkflowAgent()]


@pytest.fixture(scope="module")
def emit_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("emit") / "EMIT_SURVEY_A.nc"
    make_emit_scene(path, ROWS, COLS, PLUMES, seed=3)
    return path


def announce(path: Path, scene_id: str = "emit-survey-a") -> SceneAnnounced:
    bbox, _ = emit_extent(path)
    return SceneAnnounced(
        scene_id=scene_id,
        collection="emit-l1b-rad",
        hrefs=[str(path)],
        mode="lazy",
        bbox=bbox,
        datetime=WHEN,
    )


def survey_params(path: Path) -> dict[str, Any]:
    w, s, e, n = emit_extent(path)[0]
    return {"bbox": [w - 0.1, s - 0.1, e + 0.1, n + 0.1], "threshold_ppm_m": 1000}


async def run(node: EmbeddedNode, spec: dict[str, Any], params: dict[str, Any], **kw: Any) -> Any:
    status = await node.client().run_workflow(spec, params, timeout=240, **kw)
    assert isinstance(status, WorkflowStatus)
    return status


def products(node: EmbeddedNode) -> dict[str, dict[str, Any]]:
    page = node.services.catalog.search(SearchParams(collections=(PRODUCTS,), limit=100))
    return {i["id"]: i for i in page.items}


async def test_methane_survey_equals_the_retrieval_by_hand_with_provenance(
    tmp_path: Path, emit_scene: Path
) -> None:
    settings = load_settings(
        data_dir=tmp_path / "node", http_port=0, allowed_roots=(emit_scene.parent,)
    )
    async with EmbeddedNode(settings, agents=agents(), serve_http=False) as node:
        await node.client().publish(announce(emit_scene))
        await node.runner.drain()
        spec = template_spec("methane-survey")
        status = await run(node, spec, survey_params(emit_scene), run_id="survey-1")
        assert status.status == "succeeded", status.error
        # by hand: the same retrieval on the original file
        product = retrieve_scene(emit_scene, threshold=1000, min_pixels=5)
        assert status.outputs["scenes"] == 1
        assert status.outputs["plume_counts"] == [len(product.plumes)]
        assert len(product.plumes) == 2
        assert status.outputs["max_ppm_m"] == pytest.approx(product.max_ppm_m, rel=1e-6)
        cog = write_cog(product.grid, tmp_path / "hand.tif", WHEN)  # the scene's registered time
        scan_id = next(i for i in status.provenance if ".scan." in i)
        store = node.services.object_store
        stored = store.get_bytes(f"workflows/{scan_id}/ch4_enhancement.tif")
        assert hashlib.sha256(stored).digest() == hashlib.sha256(cog.read_bytes()).digest()

        items = products(node)
        scene_item = items[status.outputs["per_scene"][0]]
        summary = items[status.outputs["summary_item"]]
        cube_item = items[status.outputs["datacube_item"]]
        assert_plume_patches(node, status, product, cube_item)
        for item, module, inputs in (
            (scene_item, "methane-scan@1.0.0", ["emit-l1b-rad/emit-survey-a"]),
            (summary, "plume-summary@1.0.0", [f"{PRODUCTS}/{scene_item['id']}"]),
            (cube_item, "plume-cube@1.0.0", [f"{PRODUCTS}/{scene_item['id']}"]),
        ):
            p = item["properties"]
            assert p["gravitas:workflow"] == "methane-survey@1.0.0"
            assert p["gravitas:run_id"] == "survey-1"
            assert p["gravitas:modules"] == [module]
            assert p["gravitas:input_items"] == inputs
            assert p["gravitas:ran_on"] == settings.node_id == p["processing:facility"]
            name, version = module.split("@")
            assert p["processing:software"][name] == version
            assert p["processing:software"]["workflow:methane-survey"] == "1.0.0"
            assert "run survey-1" in p["processing:lineage"]
            links = [lk for lk in item["links"] if lk["rel"] == "derived_from"]
            assert [lk["href"].rsplit("/items/", 1)[1] for lk in links] == [
                i.rsplit("/", 1)[1] for i in inputs
            ]
        assert summary["properties"]["methane:plumes"] == len(product.plumes)
        assert scene_item["properties"]["datetime"] == "2024-05-01T17:00:00Z"

        if (schema_dir() / "schemas.stacspec.org").is_dir():
            from stac_validator.stac_validator import StacValidate

            with offline_schemas():
                for item in (scene_item, summary, cube_item):
                    check = StacValidate()
                    ok = check.validate_dict(item)
                    assert ok, f"{item['id']}: {check.message[0].get('error_message')}"[:3000]

        # replay: the same run asked again changes nothing
        before = products(node)
        cube_bytes = zarr_bytes(node, next(i for i in status.provenance if ".cube" in i))
        low = await run(node, spec, {**survey_params(emit_scene), "threshold_ppm_m": -5})
        assert low.status == "failed" and low.failed_step == "scan"
        assert "threshold_ppm_m" in (low.error or "") and "-5" in (low.error or "")
        assert products(node) == before  # refused before anything ran
        again = await run(node, spec, survey_params(emit_scene), run_id="survey-1")
        assert again.outputs == status.outputs and again.provenance == status.provenance
        # a SIGKILL after a step's effects but before its record: the same step (same
        # id, same request) runs again and leaves the same ids, bytes and provenance
        for step in requested_steps(node, "survey-1"):
            answer, regs = run_python_step(step, node.services)
            assert answer.status == "ok", answer.error
            for reg in regs:
                assert reg.version == 1
                strip = {"gravitas:node"}
                got = {k: v for k, v in reg.item["properties"].items() if k not in strip}
                had = before[reg.item_id]["properties"]
                assert got == {k: v for k, v in had.items() if k not in strip}
        assert store.get_bytes(f"workflows/{scan_id}/ch4_enhancement.tif") == stored
        cube_id = next(i for i in status.provenance if ".cube" in i)
        assert zarr_bytes(node, cube_id) == cube_bytes  # the replayed cube: the same bytes
        after = products(node)
        assert after == before


PATCH = 32


def zarr_bytes(node: EmbeddedNode, step_id: str) -> dict[str, bytes]:
    """Every file of a plume-patches step's Zarr, by key."""
    store = node.services.object_store
    prefix = f"workflows/{step_id}/{ZARR}/"
    return {k: store.get_bytes(k) for k in sorted(store.list(prefix))}


def assert_plume_patches(
    node: EmbeddedNode, status: WorkflowStatus, product: Any, item: dict[str, Any]
) -> None:
    """The survey's datacube equals patches cut by hand (numpy slicing of the retrieval
    on the original file) around each plume's pixel centroid."""
    import xarray as xr

    enh, labels = np.asarray(product.grid.array, np.float32), np.asarray(product.labels)
    rows, cols = enh.shape
    want = []
    for k in sorted(int(v) for v in np.unique(labels[labels > 0])):
        r, c = np.nonzero(labels == k)
        r0 = min(max(round(r.mean()) - PATCH // 2, 0), rows - PATCH)
        c0 = min(max(round(c.mean()) - PATCH // 2, 0), cols - PATCH)
        want.append((k, r0, c0))
    step_id = next(i for i in status.provenance if ".cube" in i)
    root = node.services.object_store.root / f"workflows/{step_id}/{ZARR}"  # type: ignore[attr-defined]
    with xr.open_zarr(root, consolidated=True) as ds:
        assert ds.sizes["patch"] == len(product.plumes) == status.outputs["patches"]
        assert ds["plume"].values.tolist() == [k for k, _, _ in want]
        gx, gy = product.grid.geotransform[0], product.grid.geotransform[3]
        dx, dy = product.grid.geotransform[1], product.grid.geotransform[5]
        for i, (_, r0, c0) in enumerate(want):
            assert [int(ds["row"][i]), int(ds["col"][i])] == [r0, c0]
            np.testing.assert_array_equal(
                ds["ch4_enhancement"].values[i], enh[r0 : r0 + PATCH, c0 : c0 + PATCH]
            )
            np.testing.assert_array_equal(
                ds["label"].values[i], labels[r0 : r0 + PATCH, c0 : c0 + PATCH] > 0
            )
            np.testing.assert_allclose(ds["lon"].values[i], gx + (c0 + np.arange(PATCH) + 0.5) * dx)
            np.testing.assert_allclose(ds["lat"].values[i], gy + (r0 + np.arange(PATCH) + 0.5) * dy)
        assert set(ds["split"].values.tolist()) <= {0, 1, 2}
        assert str(ds["time"].values[0])[:19] == "2024-05-01T17:00:00"
    props = item["properties"]
    assert props["methane:patches"] == len(want) and props["methane:patch_size"] == PATCH
    assert props["methane:plume_pixels"] == sum(
        int((labels[r0 : r0 + PATCH, c0 : c0 + PATCH] > 0).sum()) for _, r0, c0 in want
    )
    assert item["assets"]["data"]["href"].endswith(f"{step_id}/{ZARR}")


def requested_steps(node: EmbeddedNode, run_id: str) -> list[StepRequested]:
    """The python steps the workflow agent requested for a run (as it emitted them)."""
    agent = next(a for a in node.agents if isinstance(a, WorkflowAgent))
    assert agent.store is not None
    rows = agent.store._db.execute("SELECT emits FROM handled").fetchall()
    out = [
        StepRequested.model_validate(e["event"])
        for (blob,) in rows
        for e in orjson.loads(blob)
        if e["cls"] == "StepRequested" and e["event"]["run_id"] == run_id
    ]
    assert out
    return out


async def test_methane_survey_refuses_hostile_inputs(tmp_path: Path, emit_scene: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "node", http_port=0)  # scene not admitted
    async with EmbeddedNode(settings, agents=agents(), serve_http=False) as node:
        spec = template_spec("methane-survey")
        bad = await run(node, spec, {"collection": "x'; DROP TABLE items;--"})
        assert bad.status == "failed" and "x'; DROP TABLE items;--" in (bad.error or "")
        assert products(node) == {}
        far = await run(node, spec, {"bbox": [200.0, 0.0, 201.0, 1.0]})
        assert far.status == "failed" and "[200.0, 0.0, 201.0, 1.0]" in (far.error or "")
        # a scene outside the node's allowed roots is never registered, so never scanned
        await node.client().publish(announce(emit_scene))
        await node.runner.drain()
        refused = await run(node, spec, survey_params(emit_scene))
        assert refused.status == "failed" and refused.failed_step == "summary"
        assert "no scenes to summarize" in (refused.error or "")
        assert refused.outputs == {} and products(node) == {}
        # a hand-made scene reference not in the catalog is refused, naming it
        hostile = {
            "name": "hostile",
            "version": "1.0.0",
            "steps": {
                "scan": {
                    "module": "methane-scan@1.0.0",
                    "inputs": {
                        "scene": {
                            "collection": "emit-l1b-rad",
                            "item_id": "nope",
                            "href": "/etc/passwd",
                        }
                    },
                }
            },
        }
        forged = await run(node, hostile, {})
        assert forged.status == "failed" and forged.failed_step == "scan"
        assert "emit-l1b-rad/nope" in (forged.error or "")
        assert products(node) == {}


def test_register_reads_an_emit_footprint(emit_scene: Path, tmp_path: Path) -> None:
    """``gravitas register`` of an EMIT NetCDF: its footprint from the location group
    (the scene's own lat/lon), and a NetCDF that is not EMIT refused naming the file."""
    import netCDF4
    import numpy as np

    from gravitas.storage.readers.errors import NotHyperspectralFileError
    from gravitas.streams.cli.federation_cmd import _file_extent

    bbox, when = _file_extent(emit_scene)
    with netCDF4.Dataset(emit_scene) as ds:
        lat = np.asarray(ds.groups["location"]["lat"][:])
        lon = np.asarray(ds.groups["location"]["lon"][:])
    assert bbox == (lon.min(), lat.min(), lon.max(), lat.max()) and when is None
    other = tmp_path / "other.nc"
    with netCDF4.Dataset(other, "w") as ds:
        ds.createDimension("x", 2)
        ds.createVariable("v", "f4", ("x",))[:] = [1, 2]
    with pytest.raises(NotHyperspectralFileError, match=r"other\.nc"):
        emit_extent(other)


def one_step(module: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "hostile",
        "version": "1.0.0",
        "steps": {"s": {"module": module, "inputs": inputs}},
    }


async def test_plume_patches_and_cube_refuse_hostile_inputs(tmp_path: Path) -> None:
    """Forged products and cuts are refused naming the bad value; nothing is stored."""
    import base64
    import zlib

    settings = load_settings(data_dir=tmp_path / "node", http_port=0)
    good = {"scene": "s1", "patch_size": 8, "plumes": [1], "origins": [[0, 0]],
            "transform": [0.1, 0, -104.0, 0, -0.1, 33.0],
            "enhancement": base64.b64encode(zlib.compress(bytes(8 * 8 * 4))).decode(),
            "label": base64.b64encode(zlib.compress(bytes(8 * 8))).decode()}  # fmt: skip
    bomb = base64.b64encode(zlib.compress(bytes(64 * 1024 * 1024))).decode()
    cases = [
        ("plume-patches@1.0.0", {"product": {"collection": "emit-l1b-rad", "item_id": "x"}},
         "product.collection"),
        ("plume-patches@1.0.0", {"product": {"collection": PRODUCTS, "item_id": "../../etc"}},
         "../../etc"),
        ("plume-patches@1.0.0", {"product": {"collection": PRODUCTS, "item_id": "nope"}},
         f"{PRODUCTS}/nope"),
        ("plume-patches@1.0.0",
         {"product": {"collection": PRODUCTS, "item_id": "x"}, "patch_size": 4096}, "4096"),
        ("plume-cube@1.0.0", {"cuts": []}, "cuts"),
        ("plume-cube@1.0.0", {"cuts": [{**good, "scene": "a/b"}]}, "cuts.0.scene 'a/b'"),
        ("plume-cube@1.0.0", {"cuts": [{**good, "enhancement": "!!"}]}, "cuts.0.enhancement"),
        ("plume-cube@1.0.0", {"cuts": [{**good, "enhancement": bomb}]}, "cuts.0.enhancement"),
        ("plume-cube@1.0.0", {"cuts": [{**good, "origins": [[0, 0], [1, 1]]}]}, "2 origins"),
        ("plume-cube@1.0.0", {"cuts": [{**good, "transform": [1, 0, 0, 0, "nan", 0]}]},
         "transform"),
        ("plume-cube@1.0.0",
         {"cuts": [{**good, "label": base64.b64encode(zlib.compress(b"\x07" * 64)).decode()}]},
         "cuts.0.label"),
        ("plume-cube@1.0.0", {"cuts": [good]}, f"{PRODUCTS}/s1"),  # not a product here
    ]  # fmt: skip
    async with EmbeddedNode(settings, agents=agents(), serve_http=False) as node:
        for module, inputs, named in cases:
            status = await run(node, one_step(module, inputs), {})
            assert status.status == "failed" and status.failed_step == "s", (inputs, status)
            assert named in (status.error or ""), (named, status.error)
        assert products(node) == {}
        assert list(node.services.object_store.list("workflows/")) == []
