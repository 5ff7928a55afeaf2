"""The methane unit-absorption target: LUT spectra convolved to a sensor, fitted per band.

Following mag1c (Foote et al. 2020, IEEE TGRS 58(9)), each simulated at-sensor radiance
spectrum of the look-up table (one per CH4 enhancement level) is convolved with a
Gaussian spectral response per band (centre, FWHM), and ``ln(radiance)`` is fitted by
least squares against enhancement (with an intercept) per band. The slope, in
1/(ppm·m), is the unit absorption target: a radiance ``L`` becomes ``L * (1 + slope * e)``
for a small enhancement ``e``. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gravitas.kernels.errors import EmptyWindowError, MissingWavelengthsError

# Enhancement levels (ppm·m) of the mag1c CH4 LUT's 7 spectra (not stored in its header).
MAG1C_ENHANCEMENTS: tuple[float, ...] = (0.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0)
# mag1c's default filter window (nm) and the bands it always drops (open intervals, nm):
# below 400, the 1350-1420 and 1800-1945 water bands, and above 2485 (detector edge).
MAG1C_WINDOW: tuple[float, float] = (2122.0, 2488.0)
MAG1C_EXCLUDE: tuple[tuple[float, float], ...] = (
    (-np.inf, 400.0),
    (1350.0, 1420.0),
    (1800.0, 1945.0),
    (2485.0, np.inf),
)
# emit-ghg's wider CH4 window (nm); it keeps bands up to 2493 nm, so exclude nothing there.
EMIT_GHG_WINDOW: tuple[float, float] = (2137.0, 2493.0)
_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclass(frozen=True)
class AbsorptionLut:
    """LUT radiance spectra (levels, n_wave) at ``enhancements`` (ppm·m), ``wavelengths`` (nm)."""

    wavelengths: np.ndarray
    spectra: np.ndarray
    enhancements: np.ndarray


def check_bands(centers: object, fwhm: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate band centres and FWHM (nm): present, finite, positive FWHM, same length."""
    if centers is None or fwhm is None:
        missing = "wavelengths" if centers is None else "FWHM"
        raise MissingWavelengthsError(
            f"band {missing} missing; the target needs both band centres and FWHM in nm "
            "(read them from the file's metadata, e.g. sensor_band_parameters or the .hdr)"
        )
    c = np.asarray(centers, dtype=np.float64).ravel()
    f = np.asarray(fwhm, dtype=np.float64).ravel()
    if c.size == 0 or c.shape != f.shape:
        raise MissingWavelengthsError(
            f"{c.size} band centres but {f.size} FWHM values; give one FWHM per band"
        )
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(f)) and np.all(f > 0)):
        raise MissingWavelengthsError(
            "band centres/FWHM contain NaN, inf or non-positive widths; fix the band table"
        )
    return c, f


def convolve_spectra(
    wavelengths: np.ndarray, spectra: np.ndarray, centers: np.ndarray, fwhm: np.ndarray
) -> np.ndarray:
    """Convolve high-resolution spectra (..., n_wave) to bands with Gaussian responses.

    Each response is evaluated within +-5 FWHM and normalised to sum 1 over the
    LUT's samples; bands with no LUT sample in range get 0.
    """
    c, f = check_bands(centers, fwhm)
    wl = np.asarray(wavelengths, dtype=np.float64)
    spec = np.asarray(spectra, dtype=np.float64)
    out = np.zeros((*spec.shape[:-1], c.size), dtype=np.float64)
    sigma = f * _FWHM_TO_SIGMA
    for i in range(c.size):
        lo, hi = np.searchsorted(wl, (c[i] - 5.0 * f[i], c[i] + 5.0 * f[i]))
        if hi <= lo:
            continue
        w = np.exp(-0.5 * ((wl[lo:hi] - c[i]) / sigma[i]) ** 2)
        total = w.sum()
        if total > 0:
            out[..., i] = spec[..., lo:hi] @ (w / total)
    return out


def unit_absorption_target(lut: AbsorptionLut, centers: object, fwhm: object) -> np.ndarray:
    """Per-band slope of ln(radiance) vs enhancement, in 1/(ppm·m) (negative where CH4 absorbs).

    Bands outside the LUT's range get 0 (they carry no CH4 signal).
    """
    c, f = check_bands(centers, fwhm)
    conv = convolve_spectra(lut.wavelengths, lut.spectra, c, f)  # (levels, bands)
    levels = np.asarray(lut.enhancements, dtype=np.float64)
    if levels.size != conv.shape[0] or levels.size < 2:
        raise MissingWavelengthsError(
            f"LUT has {conv.shape[0]} spectra but {levels.size} enhancement levels; "
            "give one enhancement (ppm·m) per LUT spectrum"
        )
    positive = conv > 0
    logs = np.log(np.where(positive, conv, 1.0))
    design = np.stack((np.ones_like(levels), levels), axis=1)
    coef, *_ = np.linalg.lstsq(design, logs, rcond=None)
    slope = coef[1]
    slope[~positive.all(axis=0)] = 0.0
    return slope


def select_window(
    wavelengths: object,
    window: tuple[float, float] = MAG1C_WINDOW,
    exclude: tuple[tuple[float, float], ...] = MAG1C_EXCLUDE,
) -> np.ndarray:
    """Bool mask of bands with ``window[0] <= w <= window[1]`` outside every ``exclude`` (lo, hi).

    Raises :class:`EmptyWindowError` if no band is selected.
    """
    if wavelengths is None:
        raise MissingWavelengthsError("wavelengths missing; band selection needs centres in nm")
    wl = np.asarray(wavelengths, dtype=np.float64).ravel()
    lo, hi = float(window[0]), float(window[1])
    if not lo < hi:
        raise EmptyWindowError(f"window {window} is empty; give (low, high) in nm with low < high")
    keep = (wl >= lo) & (wl <= hi)
    for a, b in exclude:
        keep &= ~((wl > a) & (wl < b))
    if not keep.any():
        span = f"{np.nanmin(wl):.1f}-{np.nanmax(wl):.1f} nm" if wl.size else "no bands"
        raise EmptyWindowError(
            f"no band inside window {lo:g}-{hi:g} nm (sensor covers {span}); widen the "
            "window or check the wavelength units (nm expected)"
        )
    return keep
