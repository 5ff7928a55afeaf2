"""CH4 unit-absorption target on the real mag1c LUT (sample ch4_lut) at EMIT's real bands."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from gravitas.kernels.ch4_target import (
    EMIT_GHG_WINDOW,
    select_window,
    unit_absorption_target,
)
from gravitas.kernels.errors import EmptyWindowError, MissingWavelengthsError
from gravitas.storage.readers.emit_instrument import emit_fwhm, emit_wavelengths
from gravitas.storage.readers.envi import read_ch4_lut
from gravitas.storage.sampledata import fetch

_REF = Path(__file__).with_name("mag1c_reference.py")
_spec = importlib.util.spec_from_file_location("mag1c_reference_t", _REF)
assert _spec is not None and _spec.loader is not None
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)


@pytest.fixture(scope="module")
def lut():  # type: ignore[no-untyped-def]
    return read_ch4_lut(fetch("ch4_lut"))


def test_real_lut_shape(lut) -> None:  # type: ignore[no-untyped-def]
    assert lut.spectra.shape == (7, 31800)
    assert lut.wavelengths[0] == pytest.approx(1399.59, abs=0.01)
    assert lut.wavelengths[-1] == pytest.approx(2522.04, abs=0.01)
    # more methane, less radiance in the 2.3 um band
    band = (lut.wavelengths > 2300) & (lut.wavelengths < 2400)
    means = lut.spectra[:, band].mean(axis=1)
    assert np.all(np.diff(means) < 0)


def test_target_matches_mag1c_dense_resampling(lut) -> None:  # type: ignore[no-untyped-def]
    wl, fwhm = emit_wavelengths(), emit_fwhm()
    ours = unit_absorption_target(lut, wl, fwhm)
    theirs = ref.template_from_bands(lut.wavelengths, lut.spectra, lut.enhancements, wl, fwhm)
    inside = wl > 1420  # bands fully covered by the LUT
    np.testing.assert_allclose(ours[inside] * 1e5, theirs[inside], rtol=1e-6, atol=1e-9)
    assert np.all(ours[wl < 1350] == 0.0)


def test_target_is_negative_where_methane_absorbs(lut) -> None:  # type: ignore[no-untyped-def]
    wl, fwhm = emit_wavelengths(), emit_fwhm()
    t = unit_absorption_target(lut, wl, fwhm)
    window = select_window(wl)
    assert np.all(t[window] <= 0)
    strongest = wl[np.argmin(t)]
    assert 2290 < strongest < 2380  # the 2.3 um CH4 band
    assert -3e-5 < t.min() < -5e-6  # per ppm·m


def test_select_window_defaults_and_wide() -> None:
    wl = emit_wavelengths()
    m = select_window(wl)
    assert m.sum() == 49
    assert wl[m].min() >= 2122 and wl[m].max() <= 2485
    wide = select_window(wl, window=EMIT_GHG_WINDOW, exclude=())
    assert wide.sum() > m.sum() - 3 and wl[wide].max() > 2485


def test_errors_name_the_problem(lut) -> None:  # type: ignore[no-untyped-def]
    wl = emit_wavelengths()
    with pytest.raises(MissingWavelengthsError, match="FWHM"):
        unit_absorption_target(lut, wl, None)
    with pytest.raises(MissingWavelengthsError, match="285 band centres but 3"):
        unit_absorption_target(lut, wl, np.ones(3))
    with pytest.raises(MissingWavelengthsError, match="NaN"):
        unit_absorption_target(lut, np.full(5, np.nan), np.ones(5))
    with pytest.raises(EmptyWindowError, match="no band inside window 2122-2488"):
        select_window(np.linspace(400, 1000, 50))
    with pytest.raises(EmptyWindowError, match="low < high"):
        select_window(wl, window=(2400, 2100))
