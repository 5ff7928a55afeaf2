"""The EMIT chunk-by-chunk reader (storage/readers/hdf5_chunks.py) on the semi-synthetic
EMIT L1B NetCDF (real AVIRIS-NG spectra, real mag1c CH4 LUT plumes, EMIT's noise model):
bit-identical to netCDF4's hyperslab read (the general reader) and to h5py's own decoding;
layouts it does not decode fall back; damaged chunks fail with one line naming the file."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import h5py
import netCDF4
import numpy as np
import pytest

from gravitas.kernels.ch4_target import select_window
from gravitas.schemas.errors import CorruptFileError
from gravitas.storage.readers.emit import _read_bands_netcdf4, read_emit_l1b, write_emit_l1b
from gravitas.storage.readers.hdf5_chunks import ChunkPlan, plan_chunked_read
from gravitas.storage.sampledata.emit_scene import Plume, build_emit_radiance

ROWS, COLS = 100, 70  # not multiples of the 64 x 64 chunks: edge chunks are partial
WINDOW = (2122.0, 2488.0)


@pytest.fixture(scope="module")
def cube() -> tuple[np.ndarray, Any]:
    data, truth = build_emit_radiance(ROWS, COLS, [Plume(50, 35, 6, 2500.0)], seed=4)
    data[3, 5, :] = np.nan  # written as the -9999 fill value
    data[90, 66, 250] = np.nan
    return data, truth


def _write(path: Path, cube: tuple[np.ndarray, Any], **encoding: Any) -> Path:
    data, truth = cube
    good = np.ones(data.shape[2], dtype=np.uint8)
    good[[240, 241, 262]] = 0  # bad bands inside the window: a band subset with gaps
    return write_emit_l1b(
        path, data, wavelengths=truth.wavelengths, fwhm=truth.fwhm,
        geotransform=truth.geotransform, crs_wkt=truth.crs_wkt, good_wavelengths=good,
        radiance_encoding=encoding or None,
    )  # fmt: skip


@pytest.fixture(scope="module")
def emit_nc(tmp_path_factory: pytest.TempPathFactory, cube: tuple[np.ndarray, Any]) -> Path:
    return _write(tmp_path_factory.mktemp("emitc") / "EMIT_L1B_RAD_chunks.nc", cube)


def _mask(path: Path) -> np.ndarray:
    with netCDF4.Dataset(path) as ds:
        sbp = ds["sensor_band_parameters"]
        wl = np.asarray(sbp["wavelengths"][:], np.float64)
        good = np.asarray(sbp["good_wavelengths"][:]).astype(bool)
    return select_window(wl, WINDOW) & good


def _general(path: Path, mask: np.ndarray) -> np.ndarray:
    """netCDF4's hyperslab read, fill -> NaN: the reader before the chunk reader."""
    rad = _read_bands_netcdf4(path, np.flatnonzero(mask))
    rad[rad == -9999.0] = np.nan
    return rad


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint32)


def test_chunk_reader_is_bit_identical_to_netcdf4_and_h5py(emit_nc: Path) -> None:
    plan = plan_chunked_read(emit_nc, "radiance")
    assert isinstance(plan, ChunkPlan), plan
    assert plan.filters == (2, 1) and plan.chunk_shape == (64, 64, 285)
    mask = _mask(emit_nc)
    idx = np.flatnonzero(mask)
    assert np.any(np.diff(idx) > 1)  # the gaps are exercised
    scene = read_emit_l1b(emit_nc, bands=mask)
    general = _general(emit_nc, mask)
    assert scene.radiance.dtype == np.float32 and scene.radiance.shape == (ROWS, COLS, idx.size)
    np.testing.assert_array_equal(_bits(scene.radiance), _bits(general))
    with h5py.File(emit_nc) as f:  # h5py's own filter pipeline, independently
        h5 = np.asarray(f["radiance"][:, :, idx], np.float32)
    h5[h5 == -9999.0] = np.nan
    np.testing.assert_array_equal(_bits(scene.radiance), _bits(h5))
    assert np.isnan(scene.radiance[3, 5]).all() and np.isfinite(scene.radiance[4, 5]).all()
    one = plan.read_bands(idx, nan_value=-9999.0, workers=1)
    np.testing.assert_array_equal(_bits(one), _bits(general))
    full = read_emit_l1b(emit_nc)  # all bands take the same path
    np.testing.assert_array_equal(_bits(full.radiance), _bits(_general(emit_nc, mask | ~mask)))


@pytest.mark.parametrize(
    ("encoding", "reason"),
    [
        ({"contiguous": True}, "not chunked"),
        ({"zlib": True, "fletcher32": True, "chunksizes": (32, 32, 285)}, "filter 3"),
        ({"compression": "zstd", "chunksizes": (64, 64, 285)}, "filter 32015"),
        ({"zlib": True, "shuffle": False, "chunksizes": (50, 30, 100)}, None),
    ],
)
def test_other_layouts_fall_back_or_decode_identically(
    tmp_path: Path,
    cube: tuple[np.ndarray, Any],
    encoding: dict[str, Any],
    reason: str | None,
) -> None:
    path = _write(tmp_path / "EMIT_L1B_RAD_layout.nc", cube, **encoding)
    plan = plan_chunked_read(path, "radiance")
    if reason is None:  # chunks splitting the band axis, deflate without shuffle: decoded
        assert isinstance(plan, ChunkPlan) and plan.filters == (1,)
    else:
        assert isinstance(plan, str) and plan.startswith(reason), plan
    mask = _mask(path)
    got = read_emit_l1b(path, bands=mask).radiance
    np.testing.assert_array_equal(_bits(got), _bits(_general(path, mask)))


def _damage_chunk(path: Path) -> tuple[ChunkPlan, int]:
    plan = plan_chunked_read(path, "radiance")
    assert isinstance(plan, ChunkPlan)
    victim = plan.chunks[len(plan.chunks) // 2]
    with path.open("r+b") as fh:  # zero the second half of one chunk's deflate stream
        fh.seek(victim.byte_offset + victim.size // 2)
        fh.write(b"\0" * (victim.size - victim.size // 2))
    return plan, victim.byte_offset


def test_damaged_chunk_fails_with_one_line_naming_the_file(
    tmp_path: Path, cube: tuple[np.ndarray, Any]
) -> None:
    path = _write(tmp_path / "EMIT_L1B_RAD_damaged.nc", cube)
    before = path.read_bytes()
    _plan, offset = _damage_chunk(path)
    damaged = path.read_bytes()
    assert damaged != before
    with pytest.raises(CorruptFileError) as err:  # netCDF4 fails too: our message wins
        read_emit_l1b(path, bands=_mask(path))
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and f"file offset {offset}" in msg, msg
    assert "fetch it again" in msg
    assert path.read_bytes() == damaged  # reading changed nothing


def test_truncated_chunk_stream_is_refused(tmp_path: Path, cube: tuple[np.ndarray, Any]) -> None:
    path = _write(tmp_path / "EMIT_L1B_RAD_cut.nc", cube)
    plan = plan_chunked_read(path, "radiance")
    assert isinstance(plan, ChunkPlan)
    cut = dataclasses.replace(plan.chunks[0], size=plan.chunks[0].size // 3)
    short = dataclasses.replace(plan, chunks=(cut, *plan.chunks[1:]))
    with pytest.raises(CorruptFileError, match="does not inflate") as err:
        short.read_bands(np.arange(200, 285))
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    past_end = dataclasses.replace(plan.chunks[-1], byte_offset=path.stat().st_size - 10)
    beyond = dataclasses.replace(plan, chunks=(*plan.chunks[:-1], past_end))
    with pytest.raises(CorruptFileError, match="cut short") as err:
        beyond.read_bands(np.arange(200, 285))
    assert str(path) in str(err.value)


def test_truncated_file_fails_with_one_line(tmp_path: Path, cube: tuple[np.ndarray, Any]) -> None:
    path = _write(tmp_path / "EMIT_L1B_RAD_short.nc", cube)
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(CorruptFileError) as err:
        read_emit_l1b(path, bands=np.ones(285, bool))
    assert str(path) in str(err.value) and "\n" not in str(err.value)
