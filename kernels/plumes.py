"""Plume detection on an enhancement map: connected regions -> plume records with IME.

The retrieval's per-pixel enhancement is noisy (the sparse matched filter leaves most
background pixels at 0 and a heavy tail of single-pixel spikes), so pixels are not
thresholded one by one. Detection works on the map smoothed by a ``smooth`` x ``smooth``
mean (NaN-aware), whose background level and noise are measured on the scene itself
(median and 1.4826 x MAD, robust to the plumes, which cover a small part of a scene):

1. regions: smoothed > level + ``grow_sigma`` x noise (halfway to ``threshold`` when
   given), connected (8-connected by default); an opening with a 3 x 3 square cuts
   one-pixel bridges and spurs, holes are filled, regions under ``min_pixels`` go;
2. seeds (hysteresis): a region is kept if its smoothed peak exceeds the seed level:
   ``threshold`` ppm·m when given, else the larger of level + ``seed_sigma`` x noise
   and the outlier level of the scene's own regions. The retrieval's noise is heavy
   tailed and spatially clustered (surface structure leaks into the filter), so most
   candidate regions of a scene are noise; with at least ``MIN_REGIONS`` of them, a
   plume must also stand out of them: its score, mean excess over the level times
   sqrt(pixels) (its summed signal over its noise), lies ``OUTLIER_MADS`` robust
   deviations above their median on a log scale;
5. a plume's pixels are those of its region above half its smoothed peak (so a strong
   plume's outline is not widened by the smoothing).

The integrated mass enhancement (IME) of a plume is
``sum(enhancement * pixel_area) * KG_PER_M2_PER_PPM_M`` over its pixels (unsmoothed).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from gravitas.kernels.errors import ShapeMismatchError

SMOOTH_PX = 5
"""Side of the mean filter detection works on (pixels)."""
SEED_SIGMA = 5.0
"""Seeds: smoothed enhancement above background level + this many noise sigmas."""
GROW_SIGMA = 2.0
"""Regions grow over smoothed enhancement above level + this many noise sigmas."""
HALF_PEAK = 0.5
"""A plume's pixels: its region above this fraction of its smoothed peak."""
MIN_PIXELS = 10
"""Smallest plume kept (pixels)."""
OUTLIER_MADS = 2.6
"""A region is a plume when its score stands out of the scene's regions by this many MADs."""
MIN_REGIONS = 8
"""Fewer candidate regions than this: no population to compare with (pixel noise only)."""

# Mass of a 1 ppm·m CH4 column per m^2: 1e-6 m of pure CH4 at 0 degC and 1013.25 hPa,
# whose density is M / V_m = 0.01604 kg/mol / 0.022414 m^3/mol = 0.7156 kg/m^3
# -> 7.16e-7 kg m^-2 per ppm·m (the usual conversion, e.g. Varon et al. 2018).
KG_PER_M2_PER_PPM_M = 0.01604 / 0.022414 * 1e-6


@dataclass(frozen=True)
class PlumeRecord:
    """One detected plume: its label in the label image and its summary numbers."""

    label: int
    pixels: int
    area_m2: float
    max_ppm_m: float
    mean_ppm_m: float
    ime_kg: float
    centroid_row: float
    centroid_col: float


@dataclass(frozen=True)
class DetectionLevels:
    """The scene's background and the two levels detection used (ppm·m, smoothed map)."""

    level: float
    """Background level: median of the smoothed map."""
    noise: float
    """Background noise: 1.4826 x MAD of the smoothed map."""
    seed: float
    """Seed level before the scene's regions are compared (see :func:`find_plumes`)."""
    grow: float


def smoothed(enhancement: np.ndarray, size: int = SMOOTH_PX) -> np.ndarray:
    """NaN-aware ``size`` x ``size`` mean (NaN where the window holds no data)."""
    enh = np.asarray(enhancement, dtype=np.float64)
    if size <= 1:
        return enh.copy()
    valid = np.isfinite(enh)
    total = ndimage.uniform_filter(np.where(valid, enh, 0.0), size, mode="constant")
    count = ndimage.uniform_filter(valid.astype(np.float64), size, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count
    out[count < 1e-9] = np.nan
    return out


def detection_levels(
    enhancement: np.ndarray,
    *,
    threshold: float | None = None,
    smooth: int = SMOOTH_PX,
    seed_sigma: float = SEED_SIGMA,
    grow_sigma: float = GROW_SIGMA,
    _smoothed: np.ndarray | None = None,
) -> DetectionLevels:
    """Background level and noise of the scene, and the seed and grow levels."""
    sm = smoothed(enhancement, smooth) if _smoothed is None else _smoothed
    vals = sm[np.isfinite(sm)]
    if vals.size == 0:
        return DetectionLevels(0.0, 0.0, np.inf, np.inf)
    level = float(np.median(vals))
    noise = 1.4826 * float(np.median(np.abs(vals - level)))
    if noise <= 0.0:  # a scene that is mostly one value: fall back to the std
        noise = float(vals.std())
    if threshold is not None:
        return DetectionLevels(level, noise, float(threshold), level + (threshold - level) / 2)
    return DetectionLevels(level, noise, level + seed_sigma * noise, level + grow_sigma * noise)


def find_plumes(
    enhancement: np.ndarray,
    *,
    threshold: float | None = None,
    min_pixels: int = MIN_PIXELS,
    pixel_area_m2: float | np.ndarray = 3600.0,
    connectivity: int = 8,
    smooth: int = SMOOTH_PX,
    seed_sigma: float = SEED_SIGMA,
    grow_sigma: float = GROW_SIGMA,
) -> tuple[np.ndarray, list[PlumeRecord]]:
    """Label plumes in a (rows, cols) enhancement map (ppm·m; NaN = no data).

    ``threshold`` None (the default) derives the detection levels from the scene's own
    background noise (see the module docstring); a number fixes the seed level in ppm·m
    on the smoothed map. ``smooth`` 1 thresholds single pixels.

    Returns the int32 label image (0 = background, labels renumbered 1..n by size,
    largest first) and one :class:`PlumeRecord` per plume. ``pixel_area_m2`` is a
    scalar or a (rows, cols) array (geographic grids).
    """
    enh = np.asarray(enhancement, dtype=np.float64)
    if enh.ndim != 2:
        raise ShapeMismatchError(f"enhancement must be (rows, cols), got shape {enh.shape}")
    area = np.broadcast_to(np.asarray(pixel_area_m2, dtype=np.float64), enh.shape)
    if connectivity not in (4, 8):
        raise ShapeMismatchError(f"connectivity must be 4 or 8, got {connectivity}")
    if smooth < 1:
        raise ShapeMismatchError(f"smooth must be >= 1 pixel, got {smooth}")
    sm = smoothed(enh, smooth)
    levels = detection_levels(
        enh, threshold=threshold, seed_sigma=seed_sigma, grow_sigma=grow_sigma, _smoothed=sm
    )
    return _label(enh, sm, levels, min_pixels, area, connectivity, threshold is None)


def outlier_level(scores: np.ndarray, mads: float = OUTLIER_MADS) -> float:
    """The score above which a region stands out of the scene's regions: exp of the
    median of log(score) plus ``mads`` x 1.4826 x its MAD."""
    x = np.log(np.maximum(np.asarray(scores, dtype=np.float64), 1e-9))
    med = float(np.median(x))
    mad = 1.4826 * float(np.median(np.abs(x - med)))
    return float(np.exp(med + mads * mad))


def _label(
    enh: np.ndarray,
    sm: np.ndarray,
    levels: DetectionLevels,
    min_pixels: int,
    area: np.ndarray,
    connectivity: int,
    adaptive: bool,
) -> tuple[np.ndarray, list[PlumeRecord]]:
    structure = ndimage.generate_binary_structure(2, 2 if connectivity == 8 else 1)
    filled = np.nan_to_num(sm, nan=-np.inf)
    grow = filled > levels.grow
    grow = ndimage.binary_opening(grow, np.ones((3, 3), dtype=bool))
    grow = ndimage.binary_fill_holes(grow)
    raw, n = ndimage.label(grow, structure=structure)
    if n == 0:
        return np.zeros(enh.shape, dtype=np.int32), []
    index = np.arange(1, n + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        peaks = np.asarray(ndimage.maximum(filled, raw, index))
    sizes = ndimage.sum_labels(np.ones_like(enh), raw, index)
    big = sizes >= min_pixels
    keep = index[big & (peaks > levels.seed)]
    if adaptive and int(big.sum()) >= MIN_REGIONS:
        flat = np.where(np.isfinite(sm), sm, levels.level)
        excess = np.asarray(ndimage.mean(flat, raw, index)) - levels.level
        score = excess * np.sqrt(sizes)  # a region's summed excess over its noise
        keep = keep[score[keep - 1] > outlier_level(score[big])]
    remap = np.zeros(n + 1, dtype=np.int32)
    remap[keep] = np.arange(1, keep.size + 1, dtype=np.int32)
    labels = remap[raw]
    # a strong plume's region reaches past its edge by the smoothing's width: keep the
    # pixels above half its peak (a weak plume keeps its whole region)
    cut = np.zeros(keep.size + 1)
    cut[1:] = np.maximum(levels.grow, HALF_PEAK * peaks[keep - 1])
    labels[filled <= cut[labels]] = 0
    counts = np.bincount(labels.ravel(), minlength=keep.size + 1)
    big = np.flatnonzero(counts[1:] >= min_pixels) + 1
    big = big[np.argsort(-counts[big], kind="stable")]
    remap = np.zeros(keep.size + 1, dtype=np.int32)
    remap[big] = np.arange(1, big.size + 1, dtype=np.int32)
    labels = remap[labels]
    keep = big
    records: list[PlumeRecord] = []
    if keep.size == 0:
        return labels, records
    new = np.arange(1, keep.size + 1)
    e0 = np.where(labels > 0, np.nan_to_num(enh), 0.0)
    counts = ndimage.sum_labels(np.ones_like(enh), labels, new)
    areas = ndimage.sum_labels(area, labels, new)
    maxima = ndimage.maximum(e0, labels, new)
    means = ndimage.mean(e0, labels, new)
    mass = ndimage.sum_labels(e0 * area, labels, new) * KG_PER_M2_PER_PPM_M
    centres = ndimage.center_of_mass(np.ones_like(enh), labels, new)
    for i, lab in enumerate(new):
        records.append(
            PlumeRecord(
                label=int(lab),
                pixels=int(counts[i]),
                area_m2=float(areas[i]),
                max_ppm_m=float(maxima[i]),
                mean_ppm_m=float(means[i]),
                ime_kg=float(mass[i]),
                centroid_row=float(centres[i][0]),
                centroid_col=float(centres[i][1]),
            )
        )
    return labels, records
