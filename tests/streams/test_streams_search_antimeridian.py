"""`gravitas search --bbox 170,-40,-170,60`: a box across the antimeridian (west > east,
as STAC reads it) searches both sides. Data: the real ERA5 850 hPa temperature
(cfgrib's NetCDF sample, member 0)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
from typer.testing import CliRunner

from gravitas.storage.sampledata import fetch
from gravitas.streams.cli.main import app

BOX = "--bbox"
WINDOW = ["--time", "2017-01-01/2017-01-03"]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("am")
    with xr.open_dataset(fetch("era5_nc")) as ds:
        t850 = ds[["t"]].isel(number=0).sel(isobaricInhPa=850.0).load()
    t850.to_netcdf(root / "era5_t850.nc")
    res = CliRunner().invoke(
        app,
        ["ingest", str(root / "era5_t850.nc"), "--layer-name", "t850", "--data", str(root / "n")],
    )
    assert res.exit_code == 0, res.output
    return root / "n"


def _total(node: Path, bbox: str) -> tuple[int, str]:
    res = CliRunner().invoke(
        app,
        ["search", "t850", "< 300", BOX, bbox, *WINDOW, "--limit", "100000", "--data", str(node)],
    )
    assert res.exit_code == 0, res.output
    m = re.search(r"(\d+) matching pixels", res.output)
    assert m, res.output
    return int(m.group(1)), res.output


def test_search_across_the_antimeridian_covers_both_sides(node: Path) -> None:
    across, output = _total(node, "170,-40,-170,60")
    east, _ = _total(node, "170,-40,180,60")
    west, _ = _total(node, "-180,-40,-170,60")
    assert east > 0 and west > 0
    assert across == east + west
    lons = [float(v) for v in re.findall(r"│\s*(-?\d+\.\d{4})\s*│", output)]
    assert lons and all(v >= 170 or v <= -170 for v in lons)


@pytest.mark.parametrize(
    ("bbox", "words"),
    [
        ("170,-40,190,60", "longitudes must be in [-180, 180]"),
        ("170,60,-170,-40", "south must be < north"),
        ("a,b,c,d", "4 numbers"),
    ],
)
def test_bad_boxes_get_one_line_not_a_traceback(node: Path, bbox: str, words: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "gravitas.streams.cli", "search", "t850", "< 300", BOX, bbox,
         "--data", str(node)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and words in res.stderr.replace("\n", " ")
    assert bbox in res.stderr or "west=170.0" in res.stderr or "south=60.0" in res.stderr
