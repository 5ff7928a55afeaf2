"""Matched filter on the semi-synthetic EMIT scene (real AVIRIS-NG spectra, real mag1c CH4
LUT plumes, EMIT noise model) and parity with a numpy transcription of mag1c."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gravitas.kernels.ch4_target import select_window, unit_absorption_target
from gravitas.kernels.errors import (
    EmptyColumnError,
    EmptyWindowError,
    NotHyperspectralError,
    ShapeMismatchError,
)
from gravitas.kernels.matched_filter import MatchedFilterResult, retrieve
from gravitas.schemas.errors import KernelError
from gravitas.storage.readers.envi import read_ch4_lut
from gravitas.storage.sampledata import fetch
from gravitas.storage.sampledata.emit_scene import build_emit_radiance

_REF = Path(__file__).with_name("mag1c_reference.py")
_spec = importlib.util.spec_from_file_location("mag1c_reference_mf", _REF)
assert _spec is not None and _spec.loader is not None
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

ROWS, COLS = 256, 96


@pytest.fixture(scope="module")
def scene() -> dict[str, Any]:
    cube, truth = build_emit_radiance(ROWS, COLS, seed=0)
    window = select_window(truth.wavelengths)
    target = unit_absorption_target(read_ch4_lut(fetch("ch4_lut")), truth.wavelengths, truth.fwhm)
    return {"cube": cube, "truth": truth, "window": window, "target": target}


@pytest.fixture(scope="module")
def sparse32(scene: dict[str, Any]) -> MatchedFilterResult:
    return retrieve(scene["cube"], scene["target"], bands=scene["window"])


def test_plume_means_within_10_percent(
    scene: dict[str, Any], sparse32: MatchedFilterResult
) -> None:
    truth = scene["truth"]
    assert [p.enhancement for p in truth.plumes] == [500.0, 1500.0, 3000.0]
    for k, plume in enumerate(truth.plumes):
        got = float(np.mean(sparse32.enhancement[truth.plume_mask(k)]))
        assert abs(got - plume.enhancement) <= 0.10 * plume.enhancement, (plume, got)


def test_sparse_background_is_mostly_zero(
    scene: dict[str, Any], sparse32: MatchedFilterResult
) -> None:
    bg = sparse32.enhancement[scene["truth"].labels == 0]
    assert np.median(bg) == 0.0
    assert np.mean(bg == 0.0) > 0.75
    # the l1 prior keeps only excursions above ~1 sigma: mean well below the noise level
    assert 0.0 < np.mean(bg) < 0.5 * np.mean(sparse32.uncertainty)


def test_classic_background_mean_is_unbiased(scene: dict[str, Any]) -> None:
    cube, _ = build_emit_radiance(ROWS, COLS, plumes=(), seed=1)
    res = retrieve(cube, scene["target"], bands=scene["window"], iterations=0, nonnegative=False)
    assert abs(float(np.mean(res.enhancement))) < 20.0
    # with the plumes masked out of the statistics the plume scene's background is unbiased too
    masked = retrieve(
        scene["cube"], scene["target"], bands=scene["window"], iterations=0,
        nonnegative=False, mask=scene["truth"].labels > 0,
    )  # fmt: skip
    bg = masked.enhancement[scene["truth"].labels == 0]
    assert abs(float(np.mean(bg))) < 20.0
    assert np.all(np.isnan(masked.enhancement[scene["truth"].labels > 0]))
    # the reported 1-sigma matches the scatter of the classic estimate
    ratio = np.std(res.enhancement) / np.mean(res.uncertainty)
    assert 0.8 < ratio < 1.25


def test_parity_with_mag1c_float64_and_float32(scene: dict[str, Any]) -> None:
    sub = np.ascontiguousarray(scene["cube"][:, 16:48][..., scene["window"]]).astype(np.float64)
    t = scene["target"][scene["window"]]
    expected = ref.retrieve(sub, t * 1e5, num_iter=30)
    ours64 = retrieve(sub, t, dtype=np.float64).enhancement
    assert np.max(np.abs(ours64 - expected)) <= 1.0
    ours32 = retrieve(sub.astype(np.float32), t, dtype=np.float32).enhancement
    assert np.corrcoef(ours32.ravel(), expected.ravel())[0, 1] >= 0.9999
    assert expected.max() > 2000  # the window holds a plume: parity is not trivially zeros


def test_every_pixel_gets_a_value_and_groups(
    scene: dict[str, Any], sparse32: MatchedFilterResult
) -> None:
    for res in (sparse32, retrieve(scene["cube"], scene["target"], bands=scene["window"], group=5)):
        assert res.enhancement.shape == (ROWS, COLS)
        for arr in (res.enhancement, res.albedo, res.uncertainty):
            assert np.all(np.isfinite(arr))
        assert np.all(res.uncertainty > 0)
        assert 0.5 < float(np.median(res.albedo)) < 1.5


def test_nan_fill_and_masked_pixels(scene: dict[str, Any]) -> None:
    cube = scene["cube"][:, :8].copy()
    cube[0, 0, 250] = np.nan
    cube[10, 3, :] = -9999.0
    cube[-1, -1, 260] = np.inf
    mask = np.zeros(cube.shape[:2], dtype=bool)
    mask[20, 5] = True
    calls: list[tuple[int, int]] = []
    res = retrieve(
        cube, scene["target"], bands=scene["window"], mask=mask,
        progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    bad = [(0, 0), (10, 3), (ROWS - 1, 7), (20, 5)]
    for r, c in bad:
        assert np.isnan(res.enhancement[r, c]) and np.isnan(res.uncertainty[r, c])
    assert np.isfinite(res.enhancement).sum() == cube.shape[0] * cube.shape[1] - len(bad)
    assert calls[-1] == (8, 8)
    # a bad value outside the filter window does not matter
    cube2 = scene["cube"][:, :8].copy()
    cube2[5, 5, 10] = np.nan
    assert np.isfinite(retrieve(cube2, scene["target"], bands=scene["window"]).enhancement[5, 5])


def test_bad_inputs_raise_clear_errors(scene: dict[str, Any]) -> None:
    cube, target, window = scene["cube"][:, :4], scene["target"], scene["window"]
    with pytest.raises(ShapeMismatchError, match="target has 10 values"):
        retrieve(cube, np.ones(10), bands=window)
    with pytest.raises(NotHyperspectralError, match="3 bands"):
        retrieve(np.ones((5, 5, 3), np.float32), np.ones(3))
    with pytest.raises(ShapeMismatchError, match=r"\(rows, cols, bands\)"):
        retrieve(np.ones((5, 285), np.float32), target)
    with pytest.raises(ShapeMismatchError, match="band mask has shape"):
        retrieve(cube, target, bands=np.ones(10, dtype=bool))
    with pytest.raises(EmptyWindowError):
        retrieve(cube, target, bands=np.zeros(285, dtype=bool))
    with pytest.raises(EmptyWindowError, match="all zero"):
        retrieve(cube, target, bands=np.arange(285) < 50)  # visible bands: no CH4 signal
    with pytest.raises(ShapeMismatchError, match="mask has shape"):
        retrieve(cube, target, bands=window, mask=np.zeros((3, 3), dtype=bool))
    dead = cube.copy()
    dead[:, 2, :] = np.nan
    with pytest.raises(EmptyColumnError, match=r"columns \[2\]") as info:
        retrieve(dead, target, bands=window)
    assert isinstance(info.value, KernelError)
    # with a group of 2 the dead column borrows statistics from its neighbour
    ok = retrieve(dead, target, bands=window, group=2)
    assert np.all(np.isnan(ok.enhancement[:, 2])) and np.all(np.isfinite(ok.enhancement[:, 3]))
