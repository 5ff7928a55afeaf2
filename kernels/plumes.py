"""Plume detection on an enhancement map: connected regions -> plume records with IME.

A plume is a connected region (8-connected by default) of pixels above ``threshold``
(ppm·m) with at least ``min_pixels`` pixels. The integrated mass enhancement (IME) is
``sum(enhancement * pixel_area) * KG_PER_M2_PER_PPM_M``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from gravitas.kernels.errors import ShapeMismatchError

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


def find_plumes(
    enhancement: np.ndarray,
    *,
    threshold: float = 500.0,
    min_pixels: int = 5,
    pixel_area_m2: float | np.ndarray = 3600.0,
    connectivity: int = 8,
) -> tuple[np.ndarray, list[PlumeRecord]]:
    """Label plumes in a (rows, cols) enhancement map (ppm·m; NaN = no data).

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
    structure = ndimage.generate_binary_structure(2, 2 if connectivity == 8 else 1)
    above = np.nan_to_num(enh, nan=-np.inf) > threshold
    raw, n = ndimage.label(above, structure=structure)
    if n == 0:
        return np.zeros(enh.shape, dtype=np.int32), []
    index = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(np.ones_like(enh), raw, index)
    keep = index[sizes >= min_pixels]
    keep = keep[np.argsort(-sizes[keep - 1], kind="stable")]
    remap = np.zeros(n + 1, dtype=np.int32)
    remap[keep] = np.arange(1, keep.size + 1, dtype=np.int32)
    labels = remap[raw]
    records: list[PlumeRecord] = []
    if keep.size == 0:
        return labels, records
    new = np.arange(1, keep.size + 1)
    e0 = np.where(labels > 0, enh, 0.0)
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
