"""Featurize over time / space-time, extremes and per-pixel trends on real Stage IV rain
(Hurricane Florence), on both block-store backends: rasters are COGs in the object store
registered in STAC; every number equals numpy/scipy on the eagerly read grid."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import numpy as np
import pytest
import rasterio
from scipy import stats

from gravitas.agents.discovery import DiscoveryAgent
from gravitas.agents.ingest import IngestAgent
from gravitas.agents.overviews import OverviewAgent
from gravitas.schemas.events import FeatureResult, Featurize, OverviewsUpdated
from gravitas.schemas.settings import Settings, load_settings
from gravitas.storage.pixels.read import read_layer
from gravitas.streams.broker import KafkaBroker
from gravitas.streams.node import EmbeddedNode
from tests.agents.test_agents_pixels import FLORENCE, WINDOW, stageiv_event
from tests.fixtures.nodes import kafka_harness
from tests.fixtures.s3 import SeaweedS3


def featurize(expression: str, reducers: list[str], **more: object) -> Featurize:
    fields: dict[str, object] = dict(
        request_id=f"f-{uuid.uuid4().hex[:10]}",
        layers={"rain": "stageiv"},
        expression=expression,
        reducers=reducers,
        bbox=FLORENCE,
        time=WINDOW,
    )
    fields.update(more)
    return Featurize.model_validate(fields)


def _settings(tmp: Path, backend: str, s3: SeaweedS3 | None) -> Settings:
    if backend == "rocksdb":
        return load_settings(data_dir=tmp / "node", http_port=0)
    assert s3 is not None
    tag = uuid.uuid4().hex[:8]
    return load_settings(
        data_dir=tmp / "node",
        http_port=0,
        block_store=f"s3://gravitas-blocks/f-{tag}?endpoint={s3.endpoint}",
        object_store=f"s3://gravitas-objects/f-{tag}?endpoint={s3.endpoint}",
        s3_access_key=s3.access_key,
        s3_secret_key=s3.secret_key,
    )


def _raster(node: EmbeddedNode, href: str) -> tuple[np.ndarray, list[str]]:
    key = href[href.index("features/") :]
    data = node.services.object_store.get_bytes(key)
    with rasterio.open(io.BytesIO(data)) as ds:
        assert ds.crs.to_epsg() == 4326
        assert ds.profile["driver"] == "GTiff" and ds.is_tiled
        return ds.read().astype(np.float64), list(ds.descriptions)


@pytest.mark.parametrize("backend", ["rocksdb", "s3"])
async def test_over_time_space_time_extremes_and_trends(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    s3 = request.getfixturevalue("s3_server") if backend == "s3" else None
    settings = _settings(tmp_path, backend, s3)
    agents = [IngestAgent(), OverviewAgent(), DiscoveryAgent()]
    async with EmbeddedNode(settings, agents=agents, serve_http=False) as node:
        client = node.client()
        await client.publish(stageiv_event())
        await node.runner.drain()
        store, registry = node.services.block_store, node.services.layers
        arr = read_layer(store, registry, "stageiv", FLORENCE, WINDOW.start, WINDOW.end)
        v = arr.values.astype(np.float64)  # (time, lat, lon), NaN = nodata

        # over space-time: one number per reducer, plus any quantile
        req = featurize("rain", ["mean", "std", "max", "count", "sum", "q50"], over="space-time",
                        quantiles=[0.9, 0.999])  # fmt: skip
        reply = await client.request(req, "discovery.results", 120)
        assert isinstance(reply, FeatureResult) and reply.status == "ok", reply.error
        got = reply.values["all"]
        assert got["count"] == np.isfinite(v).sum()
        assert got["mean"] == pytest.approx(np.nanmean(v), rel=1e-9)
        assert got["std"] == pytest.approx(np.nanstd(v), rel=1e-6)
        assert got["max"] == pytest.approx(np.nanmax(v))
        assert got["sum"] == pytest.approx(np.nansum(v), rel=1e-9)
        assert got["q50"] == pytest.approx(np.nanquantile(v, 0.5))
        assert got["q0.9"] == pytest.approx(np.nanquantile(v, 0.9))
        assert got["q0.999"] == pytest.approx(np.nanquantile(v, 0.999))
        assert not reply.outputs  # a small answer stays inline

        # extremes: the top-k pixels with where and when
        top = await client.request(featurize("rain", ["extremes"], over="space-time", top_k=5),
                                   "discovery.results", 120)  # fmt: skip
        assert isinstance(top, FeatureResult) and top.status == "ok", top.error
        flat = np.nan_to_num(v, nan=-np.inf).ravel()
        best = np.sort(flat)[::-1][:5]
        assert [m.value for m in top.extremes] == pytest.approx(best)
        lat, lon = arr["lat"].values, arr["lon"].values
        times = arr["time"].values
        for m in top.extremes:  # where and when point at the value (ties may reorder)
            y, x = int(np.argmin(abs(lat - m.lat))), int(np.argmin(abs(lon - m.lon)))
            t = int(np.nonzero(times == np.datetime64(m.time.replace(tzinfo=None)))[0][0])
            assert (lat[y], lon[x]) == pytest.approx((m.lat, m.lon))
            assert v[t, y, x] == pytest.approx(m.value)

        # over time: per-pixel rasters by reference, registered in STAC
        req = featurize("rain", ["mean", "max", "q95", "trend"], over="time")
        reply = await client.request(req, "discovery.results", 180)
        assert isinstance(reply, FeatureResult) and reply.status == "ok", reply.error
        assert set(reply.outputs) == {"reduced", "trend"} and reply.item_id == req.request_id
        item = node.services.catalog.get_item("features", req.request_id)
        assert item["properties"]["gravitas:expression"] == "rain"
        assert item["properties"]["gravitas:layers"] == {"rain": "stageiv"}
        assert item["properties"]["gravitas:computed_by"] == settings.node_id
        assert set(item["assets"]) == {"reduced", "trend"}

        reduced, names = _raster(node, reply.outputs["reduced"])
        assert names == ["mean", "max", "q95"]
        with np.errstate(all="ignore"):
            want = [np.nanmean(v, 0), np.nanmax(v, 0), np.nanquantile(v, 0.95, axis=0)]
        for band, ref in zip(reduced, want, strict=True):
            np.testing.assert_allclose(band, ref.astype(np.float32), rtol=1e-5, equal_nan=True)

        trend, names = _raster(node, reply.outputs["trend"])
        assert names == ["slope_per_year", "intercept", "r2", "p_value"]
        years = (arr["time"].values.astype("datetime64[s]").astype(float)) / (365.25 * 86400)
        rng = np.random.default_rng(0)
        ys, xs = np.nonzero(np.isfinite(v).sum(0) >= 3)
        checked = 0
        for i in rng.choice(len(ys), 200, replace=False):
            series = v[:, ys[i], xs[i]]
            ok = np.isfinite(series)
            if np.ptp(series[ok]) == 0:
                continue  # constant (dry) pixel: r2 and p undefined
            fit = stats.linregress(years[ok] - years[0], series[ok])
            got4 = trend[:, ys[i], xs[i]]
            assert got4[0] == pytest.approx(fit.slope, rel=1e-3, abs=1e-3)
            assert got4[1] == pytest.approx(fit.intercept, rel=1e-3, abs=1e-4)
            assert got4[2] == pytest.approx(fit.rvalue**2, rel=1e-3, abs=1e-5)
            assert got4[3] == pytest.approx(fit.pvalue, rel=1e-3, abs=1e-5)
            checked += 1
        assert checked > 50

        # a replay writes the same bytes and does not bump the item's version
        version = item["properties"]["gravitas:version"]
        again = await client.request(req, "discovery.results", 180)
        assert isinstance(again, FeatureResult) and again.outputs == reply.outputs
        item2 = node.services.catalog.get_item("features", req.request_id)
        assert item2["properties"]["gravitas:version"] == version


@pytest.mark.slow
async def test_kafka_worker_pixel_trend_and_limits(
    tmp_path: Path, kafka_broker: KafkaBroker, unique_name: str
) -> None:
    async with kafka_harness(tmp_path, kafka_broker.bootstrap, unique_name) as h:
        await h.client.publish(stageiv_event())
        await h.collect(
            "overviews.updated",
            lambda evs: len({e.timestamp for e in evs if isinstance(e, OverviewsUpdated)}) >= 23,
            timeout=120,
        )
        # a request over the limits is answered as failed, naming the fix
        huge = featurize("rain", ["mean"], over="time", bbox=(-180.0, -85.0, 180.0, 85.0),
                         level=15)  # fmt: skip
        failed = await h.client.request(huge, "discovery.results", 120)
        assert isinstance(failed, FeatureResult) and failed.status == "failed"
        assert "coarser level" in (failed.error or ""), failed.error
        # the worker is alive and computes per-pixel trends; progress is published
        req = featurize("rain", ["trend"], over="time", quantiles=[0.9])
        reply = await h.client.request(req, "discovery.results", 180)
        assert isinstance(reply, FeatureResult) and reply.status == "ok", reply.error
        assert set(reply.outputs) == {"reduced", "trend"}
        key = reply.outputs["trend"]
        from gravitas.storage.objects import open_object_store

        store = open_object_store(f"file://{(h.data_dir / 'objects').resolve()}")
        with rasterio.open(io.BytesIO(store.get_bytes(key[key.index("features/") :]))) as ds:
            assert list(ds.descriptions) == ["slope_per_year", "intercept", "r2", "p_value"]
            slope = ds.read(1)
        assert np.isfinite(slope).sum() > 1000
        stages = await h.collect(
            "progress",
            lambda evs: any(
                getattr(e, "request_id", "") == req.request_id and e.stage == "done" for e in evs
            ),  # type: ignore[attr-defined]
            timeout=30,
        )
        assert stages
        assert all(w.proc is not None and w.proc.poll() is None for w in h.workers)
