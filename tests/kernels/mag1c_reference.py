"""A plain numpy transcription of mag1c's algorithm, for parity tests only.

Written from the description in Foote et al. 2020 and mag1c 1.2.0's ``acrwl1mf`` and
``generate_template_from_bands``: it recomputes the mean, covariance and Cholesky
factorisation in every iteration, as mag1c does, so it checks our rank-2/Woodbury
shortcut. Loaded by path (tests are not a package).
"""

from __future__ import annotations

import numpy as np

SCALING = 1e5
EPSILON = 1e-9


def template_from_bands(
    lut_wl: np.ndarray,
    lut_spectra: np.ndarray,
    levels: np.ndarray,
    centers: np.ndarray,
    fwhm: np.ndarray,
) -> np.ndarray:
    """mag1c's target: dense Gaussian resampling of the LUT, lstsq of ln(rad) on level (x1e5)."""
    sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    resp = np.exp(-((lut_wl[:, None] - centers[None, :]) ** 2) / (2 * sigma**2))
    resp /= np.sqrt(2 * np.pi * sigma**2)
    total = resp.sum(axis=0)
    resp = np.divide(resp, total, where=total > 0, out=resp)
    res = lut_spectra @ resp
    lograd = np.log(res, out=np.zeros_like(res), where=res > 0)
    design = np.stack((np.ones_like(levels), levels)).T
    slope, *_ = np.linalg.lstsq(design, lograd, rcond=None)
    return slope[1] * SCALING


def acrwl1mf(
    x: np.ndarray, template: np.ndarray, num_iter: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """One column group: x (pixels, bands), template scaled by 1e5; returns (mf ppm·m, albedo)."""
    n = x.shape[0]
    mu = x.mean(axis=0)
    r = (x @ mu) / (mu @ mu)
    target = template * mu
    xm = x - mu
    c = xm.T @ xm / n
    cit = np.linalg.solve(c, target)
    normalizer = target @ cit
    mf = np.maximum((x - mu) @ cit / (r * normalizer), 0.0)
    for _ in range(num_iter):
        reg = 1.0 / (r * (mf + EPSILON))
        modx = x - (r * mf)[:, None] * target[None, :]
        mu = modx.mean(axis=0)
        target = template * mu
        xm = modx - mu
        c = xm.T @ xm / n
        low = np.linalg.cholesky(c)
        cit = np.linalg.solve(low.T, np.linalg.solve(low, target))
        normalizer = max(target @ cit, 1.0)
        mf = np.maximum(((x - mu) @ cit - reg) / (r * normalizer), 0.0)
    return mf * SCALING, r


def retrieve(cube: np.ndarray, template: np.ndarray, num_iter: int = 30) -> np.ndarray:
    """Column by column (group 1) over a (rows, cols, bands) cube; template scaled by 1e5."""
    out = np.empty(cube.shape[:2])
    for col in range(cube.shape[1]):
        out[:, col], _ = acrwl1mf(cube[:, col, :].astype(np.float64), template, num_iter)
    return out
