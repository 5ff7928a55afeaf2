"""`gravitas search --json/--csv/--geojson/--out` on real Stage IV precipitation (Florence)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import orjson
import pytest
import xarray as xr
from typer.testing import CliRunner

from gravitas.storage.sampledata import fetch
from gravitas.streams.cli.main import app

SEARCH = ["search", "stageiv", "value > 100", "--bbox", "-81,32,-74,38",
          "--time", "2018-09-13/2018-09-15"]  # fmt: skip


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    data = str(tmp_path_factory.mktemp("search-out") / "node")
    res = CliRunner().invoke(
        app, ["ingest", str(fetch("stageiv_nc")), "--layer-name", "stageiv", "--data", data]
    )
    assert res.exit_code == 0, res.output
    return data


def _raw_max() -> float:
    """The largest hourly rain in the file itself (independent of the pixel store)."""
    with xr.open_dataset(fetch("stageiv_nc")) as ds:
        var = next(v for v in ds.data_vars if ds[v].ndim == 3)
        return float(np.nanmax(ds[var].values))


def test_csv_rows_are_every_match_sorted_by_value(node_dir: str) -> None:
    res = CliRunner().invoke(app, [*SEARCH, "--csv", "--data", node_dir])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert rows and list(rows[0]) == ["lon", "lat", "time", "value"]
    values = [float(r["value"]) for r in rows]
    assert all(v > 100 for v in values)
    assert values == sorted(values, reverse=True)
    assert all(-81 <= float(r["lon"]) <= -74 and 32 <= float(r["lat"]) <= 38 for r in rows)
    # the top row is a real value of the file, not a stretched or rounded one
    assert values[0] <= _raw_max() + 1e-3


def test_json_and_geojson_agree_with_csv(node_dir: str, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, [*SEARCH, "--json", "--data", node_dir])
    assert res.exit_code == 0, res.output
    doc = orjson.loads(res.stdout)
    assert doc["layer"] == "stageiv" and doc["total_matches"] == len(doc["matches"]) > 0
    assert sum(doc["counts_per_time"].values()) == doc["total_matches"]
    out = tmp_path / "rain.geojson"
    res = runner.invoke(app, [*SEARCH, "--out", str(out), "--data", node_dir])
    assert res.exit_code == 0, res.output
    gj = orjson.loads(out.read_bytes())
    assert gj["type"] == "FeatureCollection"
    assert len(gj["features"]) == doc["total_matches"]
    first = gj["features"][0]
    assert first["geometry"]["type"] == "Point"
    assert first["properties"]["value"] == doc["matches"][0]["value"]


def test_conflicting_or_unknown_output_choices_are_one_line_errors(node_dir: str) -> None:
    runner = CliRunner()
    res = runner.invoke(app, [*SEARCH, "--csv", "--json", "--data", node_dir])
    assert res.exit_code != 0 and "choose one of" in str(res.exception)
    res = runner.invoke(app, [*SEARCH, "--out", "rain.xlsx", "--data", node_dir])
    assert res.exit_code != 0 and "rain.xlsx" in str(res.exception)
