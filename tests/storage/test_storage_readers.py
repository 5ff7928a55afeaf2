"""EMIT/ENVI readers: round trips of the semi-synthetic EMIT NetCDF (real AVIRIS-NG
spectra + real mag1c CH4 LUT) and of ENVI files; the real mag1c LUT; rejections."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from gravitas.schemas.errors import CorruptFileError, InputError, UnsupportedFormatError
from gravitas.storage.readers.emit import read_emit_l1b
from gravitas.storage.readers.emit_instrument import emit_fwhm, emit_wavelengths
from gravitas.storage.readers.envi import (
    read_ch4_lut,
    read_envi,
    read_envi_header,
    read_envi_scene,
    write_envi,
)
from gravitas.storage.readers.errors import EnviHeaderError, NotHyperspectralFileError
from gravitas.storage.readers.scene import georeference
from gravitas.storage.sampledata import fetch
from gravitas.storage.sampledata.emit_scene import Plume, build_emit_radiance, make_emit_scene


@pytest.fixture(scope="module")
def emit_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("emit") / "EMIT_L1B_RAD_semisynthetic.nc"
    make_emit_scene(path, rows=40, cols=24, plumes=[Plume(20, 12, 4, 2000.0)], seed=3)
    return path


def test_emit_round_trip(emit_file: Path) -> None:
    scene = read_emit_l1b(emit_file)
    cube, truth = build_emit_radiance(40, 24, [Plume(20, 12, 4, 2000.0)], seed=3)
    assert scene.shape == (40, 24, 285)
    np.testing.assert_array_equal(scene.radiance, cube)
    np.testing.assert_allclose(scene.wavelengths, emit_wavelengths(), rtol=1e-6)
    np.testing.assert_allclose(scene.fwhm, emit_fwhm(), rtol=1e-6)
    assert scene.good_bands.all()
    assert scene.geotransform == pytest.approx(truth.geotransform)
    assert scene.crs_wkt is not None and "WGS 84" in scene.crs_wkt
    assert scene.glt is not None and scene.glt.shape == (40, 24, 2)
    assert scene.lat is not None and scene.lat[0, 0] > scene.lat[-1, 0]  # north-up
    assert int(truth.labels.sum()) > 30


def test_emit_band_subset_and_fill(emit_file: Path, tmp_path: Path) -> None:
    wl = emit_wavelengths()
    sel = (wl > 2100) & (wl < 2500)
    sub = read_emit_l1b(emit_file, bands=sel)
    assert sub.radiance.shape == (40, 24, int(sel.sum()))
    full = read_emit_l1b(emit_file)
    np.testing.assert_array_equal(sub.radiance, full.radiance[..., sel])
    with netCDF4.Dataset(emit_file, "a") as ds:
        ds["radiance"][0, 0, :] = -9999.0
    assert np.isnan(read_emit_l1b(emit_file).radiance[0, 0]).all()


def test_georeference_through_glt() -> None:
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    glt = np.zeros((2, 2, 2), dtype=np.int32)
    glt[0, 0] = (4, 3)  # x=col 4, y=row 3 (1-based) -> values[2, 3]
    glt[1, 1] = (-1, 1)  # negative = repeated pixel, used by magnitude
    geo = georeference(values, glt, (10.0, 0.5, 0.0, 50.0, 0.0, -0.5), "WKT")
    assert geo.array[0, 0] == 11.0 and geo.array[1, 1] == 0.0
    assert np.isnan(geo.array[0, 1]) and np.isnan(geo.array[1, 0])
    assert geo.geotransform[0] == 10.0
    with pytest.raises(InputError, match="outside the sensor grid"):
        georeference(values[:1, :1], glt, (0, 1, 0, 0, 0, -1), "WKT")


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("byte_order", [0, 1])
def test_envi_round_trip(tmp_path: Path, interleave: str, byte_order: int) -> None:
    rng = np.random.default_rng(0)
    cube = rng.random((7, 5, 12)).astype(np.float32)
    wl = np.linspace(2100, 2450, 12)
    path = write_envi(
        tmp_path / f"ang_rdn_{interleave}_img", cube, interleave=interleave,
        wavelengths=wl, fwhm=np.full(12, 5.5), byte_order=byte_order,
    )  # fmt: skip
    data, hdr = read_envi(path)
    assert hdr.interleave == interleave and data.shape == (7, 5, 12)
    np.testing.assert_array_equal(np.asarray(data), cube)
    scene = read_envi_scene(Path(str(path) + ".hdr"))
    np.testing.assert_allclose(scene.wavelengths, wl)
    np.testing.assert_allclose(scene.fwhm, 5.5)


def test_envi_micrometres_are_converted(tmp_path: Path) -> None:
    path = write_envi(
        tmp_path / "um", np.ones((2, 2, 12), np.float32),
        wavelengths=np.linspace(2.1, 2.4, 12), wavelength_units="Micrometers",
    )  # fmt: skip
    assert read_envi_scene(path).wavelengths[0] == pytest.approx(2100.0)


def test_real_ch4_lut() -> None:
    hdr = read_envi_header(fetch("ch4_lut") / "ch4.hdr")
    assert (hdr.samples, hdr.lines, hdr.bands, hdr.interleave) == (7, 1, 31800, "bsq")
    assert hdr.dtype == np.dtype("<f8")
    lut = read_ch4_lut(fetch("ch4_lut"))
    assert lut.spectra.shape == (7, 31800) and np.all(lut.spectra[:, 1000] > 0)


def test_rejections_name_the_file(tmp_path: Path) -> None:
    tif = tmp_path / "rgb.tif"
    with rasterio.open(
        tif, "w", driver="GTiff", width=4, height=4, count=3, dtype="uint8",
        crs="EPSG:4326", transform=from_origin(0, 4, 1, 1),
    ) as dst:  # fmt: skip
        dst.write(np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(UnsupportedFormatError, match=r"rgb\.tif"):
        read_emit_l1b(tif)
    nc = tmp_path / "no_radiance.nc"
    with netCDF4.Dataset(nc, "w") as ds:
        ds.createDimension("x", 3)
        ds.createVariable("t2m", "f4", ("x",))[:] = 1.0
    with pytest.raises(NotHyperspectralFileError, match=r"no_radiance\.nc"):
        read_emit_l1b(nc)
    with pytest.raises(CorruptFileError, match=r"missing\.nc"):
        read_emit_l1b(tmp_path / "missing.nc")
    rgb = write_envi(
        tmp_path / "rgb_envi", np.ones((4, 4, 3), np.uint8), wavelengths=[450, 550, 650]
    )
    with pytest.raises(NotHyperspectralFileError, match="3 bands"):
        read_envi_scene(rgb)
    short = write_envi(tmp_path / "short", np.ones((4, 4, 12), np.float32))
    Path(short).write_bytes(b"\0" * 10)
    with pytest.raises(EnviHeaderError, match="promises"):
        read_envi(short)
    bad = tmp_path / "bad.hdr"
    bad.write_text("not envi\n")
    with pytest.raises(CorruptFileError, match=r"bad\.hdr"):
        read_envi_header(bad)
