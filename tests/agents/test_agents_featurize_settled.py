"""Featurize outputs' STAC registrations are settled in the effect ledger like every other
registration: a replay of the request (same event id) writes the same bytes, registers the
item with the same version and ``registered_at`` and publishes the same registration (so
a crash after the catalog write but before the publish loses nothing); another request
with the same outputs changes nothing; one with other outputs is the next version."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

from gravitas.agents.featurize import Computed
from gravitas.agents.featurize_outputs import COLLECTION, store_outputs
from gravitas.agents.services import NodeServices
from gravitas.schemas.events import FeatureResult, Featurize, ItemRegistered, TimeRange
from gravitas.schemas.settings import load_settings
from tests.fixtures.state import fingerprint

T = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _event(event_id: uuid.UUID) -> Featurize:
    return Featurize(
        event_id=event_id,
        occurred_at=T,
        request_id="feat-settled",
        layers={"rain": "stageiv"},
        expression="rain",
        reducers=["mean", "max"],
        over="time",
        bbox=(-79.0, 33.5, -77.0, 35.5),
        time=TimeRange(
            start=datetime(2018, 9, 13, tzinfo=UTC), end=datetime(2018, 9, 15, tzinfo=UTC)
        ),
    )


def _computed(event: Featurize, scale: float) -> Computed:
    lat = np.linspace(35.45, 33.55, 20)
    lon = np.linspace(-78.95, -77.05, 20)
    values = np.arange(2 * 20 * 20, dtype=np.float32).reshape(2, 20, 20) * scale
    values[:, 0, 0] = np.nan
    raster = xr.DataArray(
        values,
        dims=("band", "lat", "lon"),
        coords={
            "band": ["mean", "max"],
            "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east"}),
        },
    )
    return Computed(FeatureResult(request_id=event.request_id), rasters={"reduced": raster})


def _content(reg: ItemRegistered) -> str:
    return reg.model_dump_json(exclude={"event_id", "occurred_at", "signature"})


@pytest.fixture
def services(tmp_path: Path) -> NodeServices:
    settings = load_settings(data_dir=tmp_path / "n", http_port=0, broker="memory://")
    return NodeServices(settings)  # type: ignore[arg-type]


def test_replayed_featurize_registration_is_settled(services: NodeServices) -> None:
    event = _event(uuid.uuid4())
    result, regs = store_outputs(services, event, _computed(event, 1.0))
    assert [r.version for r in regs] == [1]
    item = services.catalog.get_item(COLLECTION, event.request_id)
    assert item["properties"]["gravitas:registered_at"] == T.isoformat()
    key = f"features/{event.request_id}/reduced.tif"
    with rasterio.MemoryFile(services.object_store.get_bytes(key)) as mem, mem.open() as src:
        got = src.read()
    np.testing.assert_array_equal(got, _computed(event, 1.0).rasters["reduced"].values)
    before = fingerprint(services)

    # a replay (the crash came after the catalog write, before the publish): the same
    # registration again, nothing stored changed
    again, regs2 = store_outputs(services, event, _computed(event, 1.0))
    assert (again.outputs, again.item_id) == (result.outputs, result.item_id)
    assert [_content(r) for r in regs2] == [_content(r) for r in regs]
    assert fingerprint(services) == before
    # and again, while a newer version exists: the replay does not roll it back
    other = _event(uuid.uuid4())
    _, regs3 = store_outputs(services, other, _computed(other, 2.0))
    assert [r.version for r in regs3] == [2]
    newer = fingerprint(services)
    _, regs4 = store_outputs(services, other, _computed(other, 2.0))
    assert [_content(r) for r in regs4] == [_content(r) for r in regs3]
    assert fingerprint(services) == newer


def test_new_request_with_the_same_outputs_changes_nothing(services: NodeServices) -> None:
    first = _event(uuid.uuid4())
    store_outputs(services, first, _computed(first, 1.0))
    before = fingerprint(services)
    second = _event(uuid.uuid4())
    _, regs = store_outputs(services, second, _computed(second, 1.0))
    assert regs == []
    assert fingerprint(services) == before
