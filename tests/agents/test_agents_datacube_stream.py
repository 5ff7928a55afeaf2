"""The streaming Zarr writer: the same bytes as the in-memory write, memory bounded by a
slab, and a SIGKILL mid-stream leaves nothing half-published; the replay writes the
same bytes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tracemalloc
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from gravitas.agents.datacube.zarr_v2 import ZarrStream, ZarrWriteError, write_zarr

SHAPE = (6, 3, 16, 16)  # time, band, y, x of one patch
CHUNK = (1, *SHAPE)
DIMS = ("patch", "time", "band", "y", "x")


def slab(i0: int, i1: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(i0)
    data = rng.normal(500, 50, (i1 - i0, *SHAPE)).astype(np.float32)
    data[rng.random(data.shape) < 0.02] = np.nan
    return data, (rng.random(data.shape) < 0.1).astype(np.uint8)


def dataset(n: int, data: object, filled: object) -> xr.Dataset:
    ds = xr.Dataset(
        {"data": (DIMS, data, {"long_name": "values"}), "gap_filled": (DIMS, filled),
         "split": (("patch",), (np.arange(n) % 3).astype(np.int8))},
        coords={"row": ("patch", np.arange(n) * 16),
                "time": ("time", (np.arange(SHAPE[0]) * 86400 * 10**9).astype("datetime64[ns]"))},
        attrs={"title": "stream test"},
    )  # fmt: skip
    ds["data"].encoding["_FillValue"] = np.float32(np.nan)
    return ds


def stream(root: Path, n: int, step: int) -> int:
    z = ZarrStream(root)
    for i0 in range(0, n, step):
        data, filled = slab(i0, min(i0 + step, n))
        z.append("data", data, CHUNK)
        z.append("gap_filled", filled, CHUNK)
    lazy = dataset(n, da.zeros((n, *SHAPE), dtype=np.float32, chunks=CHUNK),
                   da.zeros((n, *SHAPE), dtype=np.uint8, chunks=CHUNK))  # fmt: skip
    return z.commit(lazy, {"data": CHUNK, "gap_filled": CHUNK})


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_streamed_bytes_equal_the_in_memory_write(tmp_path: Path) -> None:
    n = 23
    data, filled = (
        np.concatenate(x) for x in zip(slab(0, 10), slab(10, 20), slab(20, 23), strict=True)
    )
    whole = write_zarr(dataset(n, data, filled), tmp_path / "whole.zarr",
                       {"data": CHUNK, "gap_filled": CHUNK})  # fmt: skip
    assert stream(tmp_path / "streamed.zarr", n, 10) == whole
    assert tree(tmp_path / "streamed.zarr") == tree(tmp_path / "whole.zarr")
    back = xr.open_zarr(tmp_path / "streamed.zarr")
    np.testing.assert_array_equal(back["data"].values, data)  # NaN where NaN
    assert not (tmp_path / ".streamed.zarr.partial").exists()


def test_memory_is_bounded_by_a_slab_not_the_cube(tmp_path: Path) -> None:
    n, step = 400, 20  # 400 patches of 18 KiB floats + 4.6 KiB flags: a 9 MB cube
    slab_bytes = step * int(np.prod(SHAPE)) * 5
    tracemalloc.start()
    try:
        stream(tmp_path / "big.zarr", n, step)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    cube = n * int(np.prod(SHAPE)) * 5
    assert peak < 4 * slab_bytes < cube / 4, (peak, slab_bytes, cube)
    assert xr.open_zarr(tmp_path / "big.zarr").sizes["patch"] == n


def test_bad_slabs_and_shapes_are_refused(tmp_path: Path) -> None:
    z = ZarrStream(tmp_path / "x.zarr")
    z.append("data", slab(0, 3)[0], (2, *SHAPE))  # 3 rows: ends in a partial chunk row
    with pytest.raises(ZarrWriteError, match=r"slab of 'data' at row 3"):
        z.append("data", slab(3, 5)[0], (2, *SHAPE))
    with pytest.raises(ZarrWriteError, match="dtype object"):
        z.append("names", np.array(["a", None], dtype=object), (1,))
    lazy = dataset(5, da.zeros((5, *SHAPE), dtype=np.float32), np.zeros((5, *SHAPE), np.uint8))
    with pytest.raises(ZarrWriteError, match=r"3 rows of 'data' were appended"):
        z.commit(lazy, {"data": (2, *SHAPE)})
    wrong = dataset(3, da.zeros((3, *SHAPE)), np.zeros((3, *SHAPE), np.uint8))  # float64
    with pytest.raises(ZarrWriteError, match="appended as float32, but the dataset encodes"):
        z.commit(wrong, {"data": (2, *SHAPE)})
    z.append("flags", np.zeros((2, *SHAPE), np.uint8), (2, *SHAPE))
    with pytest.raises(ZarrWriteError, match="is float64, earlier ones uint8"):
        z.append("flags", np.zeros((2, *SHAPE)), (2, *SHAPE))
    with pytest.raises(ZarrWriteError, match=r"appended but not in the dataset: \['flags'\]"):
        z.commit(dataset(3, da.zeros((3, *SHAPE), dtype=np.float32), slab(0, 3)[1]))
    assert not (tmp_path / "x.zarr").exists()  # nothing published


CHILD = """
import sys, time
import numpy as np
from pathlib import Path
from gravitas.agents.datacube.zarr_v2 import ZarrStream
shape, chunk = {shape!r}, (1, *{shape!r})
z = ZarrStream(Path({root!r}))
for i0 in range(0, 40, 5):
    rng = np.random.default_rng(i0)  # the slabs of slab() in the test module
    data = rng.normal(500, 50, (5, *shape)).astype(np.float32)
    data[rng.random(data.shape) < 0.02] = np.nan
    z.append("data", data, chunk)
    z.append("gap_filled", (rng.random(data.shape) < 0.1).astype(np.uint8), chunk)
    if i0 == 15:
        print("half", flush=True)
        time.sleep(60)
"""


def test_sigkill_mid_stream_then_replay_gives_the_same_bytes(tmp_path: Path) -> None:
    root = tmp_path / "cube.zarr"
    stream(root, 7, 5)  # an earlier cube stays readable until the replacement is whole
    before = tree(root)
    code = CHILD.format(shape=SHAPE, root=str(root))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "half"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    assert tree(root) == before  # the killed write published nothing
    assert (tmp_path / ".cube.zarr.partial" / "data" / "19.0.0.0.0").is_file()
    stream(root, 40, 5)  # the replay
    stream(tmp_path / "clean.zarr", 40, 5)
    assert tree(root) == tree(tmp_path / "clean.zarr")
    assert not (tmp_path / ".cube.zarr.partial").exists()
