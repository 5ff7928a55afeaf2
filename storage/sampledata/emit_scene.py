"""A semi-synthetic EMIT L1B radiance scene with methane plumes of known strength.

No package ships a real hyperspectral cube, so we build one from real parts and say so:

* backgrounds: the 10 real AVIRIS-NG radiance spectra of isofit's Pasadena example
  (sample ``aviris_ng_spectra``), resampled to EMIT's 285 bands (Gaussian responses,
  EMIT FWHM 8.415-8.810 nm, AVIRIS-NG's ~5.5 nm deconvolved in quadrature) and mixed
  spatially with smooth random abundance fields, a smooth brightness field and a 2 %
  pixel texture;
* plumes: discs of known enhancement (ppm·m) injected through mag1c's real CH4 LUT
  (sample ``ch4_lut``) by Beer-Lambert: per band, ln(radiance) of the band-convolved LUT
  spectra is interpolated linearly between the LUT's enhancement levels, so the
  radiance is multiplied by exp(ln L(e) - ln L(0)). This is not the retrieval's linear
  model (no fitted slope, band saturation kept);
* noise: EMIT's per-band instrument model NEDL = |a sqrt(b + L) + c|, Gaussian;
* geometry: a north-up EPSG:4326 grid with EMIT's ~0.000542 deg pixels, an identity GLT
  and per-pixel lat/lon, written in EMIT's NetCDF layout (see
  :mod:`gravitas.storage.readers.emit`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from gravitas.kernels.ch4_target import AbsorptionLut, convolve_spectra
from gravitas.schemas.errors import InputError
from gravitas.storage.readers.emit_instrument import (
    emit_fwhm,
    emit_noise_coefficients,
    emit_wavelengths,
)
from gravitas.storage.readers.envi import read_ch4_lut
from gravitas.storage.sampledata.fetch import fetch

AVIRIS_NG_FWHM_NM = 5.5  # nominal AVIRIS-NG FWHM (its 2017 wavelength fit: 5.5-5.6 nm)
EMIT_PIXEL_DEG = 0.000542232520256367  # EMIT's L1B output grid spacing (about 60 m)
DEFAULT_ORIGIN = (-103.7, 32.3)  # lon, lat of the upper-left corner (Permian Basin)
WGS84_WKT = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,'
    'AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,'
    'AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],'
    'AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]'
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Plume:
    """A disc of uniform CH4 enhancement: centre (row, col), radius (px), strength (ppm·m)."""

    row: float
    col: float
    radius: float
    enhancement: float


@dataclass(frozen=True)
class SceneTruth:
    """What was injected: enhancement (ppm·m) per pixel; labels 0 = none, k = plumes[k-1]."""

    enhancement: np.ndarray
    labels: np.ndarray
    plumes: tuple[Plume, ...]
    wavelengths: np.ndarray
    fwhm: np.ndarray
    geotransform: tuple[float, float, float, float, float, float]
    crs_wkt: str

    def plume_mask(self, k: int) -> np.ndarray:
        """Bool (rows, cols) mask of plume ``k`` (0-based)."""
        return self.labels == k + 1


def default_plumes(rows: int, cols: int) -> tuple[Plume, ...]:
    """Three plumes of 500, 1500 and 3000 ppm·m spread over the scene."""
    r = max(3.0, min(rows, cols) / 14.0)
    return (
        Plume(rows * 0.22, cols * 0.3, r, 500.0),
        Plume(rows * 0.5, cols * 0.7, r, 1500.0),
        Plume(rows * 0.78, cols * 0.4, r, 3000.0),
    )


def load_aviris_ng_spectra(directory: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The real AVIRIS-NG radiance spectra: (wavelengths nm (n,), radiance (k, n))."""
    folder = Path(directory) if directory is not None else fetch("aviris_ng_spectra")
    files = sorted(folder.glob("*_rdn_*.txt"))
    if not files:
        raise InputError(f"{folder}: no AVIRIS-NG *_rdn_*.txt spectra; fetch 'aviris_ng_spectra'")
    tables = [np.loadtxt(f) for f in files]
    wl = tables[0][:, 0]
    spectra = np.stack([np.interp(wl, t[:, 0], t[:, 1]) for t in tables])
    return wl, spectra


def resample_to_bands(
    wl: np.ndarray, spectra: np.ndarray, centers: np.ndarray, fwhm: np.ndarray, src_fwhm: float
) -> np.ndarray:
    """Resample band spectra to new bands: Gaussian of width sqrt(fwhm^2 - src_fwhm^2)."""
    eff = np.sqrt(np.maximum(fwhm**2 - src_fwhm**2, 1.0))
    sigma = eff / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    w = np.exp(-0.5 * ((wl[:, None] - centers[None, :]) / sigma[None, :]) ** 2)
    w /= w.sum(axis=0, keepdims=True)
    return spectra @ w


def plume_transmittance(lut: AbsorptionLut, centers: np.ndarray, fwhm: np.ndarray) -> np.ndarray:
    """ln(L(e)/L(0)) per LUT level and band (levels, bands), band-convolved from the LUT."""
    conv = convolve_spectra(lut.wavelengths, lut.spectra, centers, fwhm)
    ok = (conv > 0).all(axis=0)
    logs = np.zeros_like(conv)
    logs[:, ok] = np.log(conv[:, ok]) - np.log(conv[0, ok])
    return logs


def _log_ratio_at(levels: np.ndarray, log_ratio: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Piecewise-linear interpolation of ln(L(e)/L(0)) (levels, bands) at enhancements e (m,)."""
    e = np.clip(e, 0.0, levels[-1])
    k = np.clip(np.searchsorted(levels, e, side="right") - 1, 0, levels.size - 2)
    f = (e - levels[k]) / (levels[k + 1] - levels[k])
    return log_ratio[k] * (1.0 - f)[:, None] + log_ratio[k + 1] * f[:, None]


def _truth(rows: int, cols: int, plumes: Sequence[Plume]) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:rows, 0:cols]
    enh = np.zeros((rows, cols), dtype=np.float32)
    labels = np.zeros((rows, cols), dtype=np.int32)
    for k, p in enumerate(plumes):
        if p.enhancement < 0 or p.radius <= 0:
            raise InputError(f"plume {p}: needs enhancement >= 0 ppm·m and radius > 0 px")
        inside = (yy - p.row) ** 2 + (xx - p.col) ** 2 <= p.radius**2
        enh[inside] = p.enhancement
        labels[inside] = k + 1
    return enh, labels


def build_emit_radiance(
    rows: int = 256,
    cols: int = 96,
    plumes: Sequence[Plume] | None = None,
    seed: int = 0,
    *,
    noise: bool = True,
    spectra_dir: Path | None = None,
    lut_dir: Path | None = None,
    chunk_rows: int = 128,
    origin: tuple[float, float] = DEFAULT_ORIGIN,
    progress: Progress | None = None,
    brightness: float = 1.0,
    noise_scale: float = 1.0,
) -> tuple[np.ndarray, SceneTruth]:
    """Build the semi-synthetic radiance cube (rows, cols, 285) float32 in memory, and its truth.

    ``brightness`` scales the surface (albedo: 0.5 is a dark scene, so a weaker signal
    against the same instrument noise); ``noise_scale`` multiplies EMIT's noise model."""
    if brightness <= 0 or noise_scale < 0:
        raise InputError(
            f"brightness must be > 0 and noise_scale >= 0, got {brightness}, {noise_scale}"
        )
    if rows < 2 or cols < 2:
        raise InputError(f"scene must be at least 2 x 2 pixels, got {rows} x {cols}")
    say = progress or (lambda _msg: None)
    plumes = tuple(default_plumes(rows, cols) if plumes is None else plumes)
    centers, fwhm = emit_wavelengths(), emit_fwhm()
    wl, ang = load_aviris_ng_spectra(spectra_dir)
    endmembers = resample_to_bands(wl, ang, centers, fwhm, AVIRIS_NG_FWHM_NM)  # (k, 285)
    lut = read_ch4_lut(lut_dir if lut_dir is not None else fetch("ch4_lut"))
    log_ratio = plume_transmittance(lut, centers, fwhm)
    coef = emit_noise_coefficients()
    rng = np.random.default_rng(seed)
    k = endmembers.shape[0]
    say(f"abundance fields for {k} real AVIRIS-NG spectra")
    scale = max(2.0, min(rows, cols) / 24.0)
    fields = np.stack([gaussian_filter(rng.standard_normal((rows, cols)), scale) for _ in range(k)])
    fields /= fields.std(axis=(1, 2), keepdims=True) + 1e-12
    weights = np.exp(1.5 * fields)
    weights /= weights.sum(axis=0, keepdims=True)
    bright = gaussian_filter(rng.standard_normal((rows, cols)), 2 * scale)
    bright = brightness * (1.0 + 0.15 * bright / (bright.std() + 1e-12))
    bright *= 1.0 + 0.02 * rng.standard_normal((rows, cols))
    enh, labels = _truth(rows, cols, plumes)
    cube = np.empty((rows, cols, centers.size), dtype=np.float32)
    for r0 in range(0, rows, chunk_rows):
        r1 = min(rows, r0 + chunk_rows)
        say(f"radiance rows {r0}-{r1} of {rows}")
        w = weights[:, r0:r1].reshape(k, -1).T  # (pixels, k)
        block = (w @ endmembers) * bright[r0:r1].reshape(-1, 1)
        e = enh[r0:r1].ravel()
        hit = np.flatnonzero(e > 0)
        if hit.size:
            block[hit] *= np.exp(_log_ratio_at(lut.enhancements, log_ratio, e[hit]))
        if noise:
            arg = np.maximum(coef[:, 1] + block, 1e-5)
            nedl = noise_scale * np.abs(coef[:, 0] * np.sqrt(arg) + coef[:, 2])
            block += nedl * rng.standard_normal(block.shape, dtype=np.float32)
        cube[r0:r1] = block.reshape(r1 - r0, cols, -1)
    lon0, lat0 = origin
    geotransform = (lon0, EMIT_PIXEL_DEG, 0.0, lat0, 0.0, -EMIT_PIXEL_DEG)
    truth = SceneTruth(
        enhancement=enh,
        labels=labels,
        plumes=plumes,
        wavelengths=centers,
        fwhm=fwhm,
        geotransform=geotransform,
        crs_wkt=WGS84_WKT,
    )
    return cube, truth


def make_emit_scene(
    path: Path,
    rows: int = 256,
    cols: int = 96,
    plumes: Sequence[Plume] | None = None,
    seed: int = 0,
    *,
    noise: bool = True,
    progress: Progress | None = None,
) -> SceneTruth:
    """Write a semi-synthetic EMIT-format L1B radiance NetCDF to ``path``; return the truth."""
    from gravitas.storage.readers.emit import write_emit_l1b

    cube, truth = build_emit_radiance(rows, cols, plumes, seed, noise=noise, progress=progress)
    write_emit_l1b(
        Path(path),
        cube,
        wavelengths=truth.wavelengths,
        fwhm=truth.fwhm,
        geotransform=truth.geotransform,
        crs_wkt=truth.crs_wkt,
        title="gravitas semi-synthetic EMIT L1B radiance (real AVIRIS-NG spectra, mag1c CH4 "
        "LUT plumes, EMIT noise model)",
    )
    return truth


def main(argv: list[str] | None = None) -> int:
    """``python -m gravitas.storage.sampledata.emit_scene OUT.nc [ROWS COLS]``: a test scene
    with the default plumes (500, 1500, 3000 ppm·m); prints them."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or len(args) not in (1, 3):
        print(main.__doc__)
        return 0 if args and args[0] in ("-h", "--help") else 1
    rows, cols = (int(args[1]), int(args[2])) if len(args) == 3 else (256, 96)
    truth = make_emit_scene(Path(args[0]), rows, cols)
    for p in truth.plumes:
        print(
            f"plume row {p.row:.0f} col {p.col:.0f} radius {p.radius:.1f} px: {p.enhancement} ppm·m"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
