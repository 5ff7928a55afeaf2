"""Methane matched filter (mag1c-class) in Numba, parallel over column groups.

Algorithm (Foote et al. 2020, "Fast and Accurate Retrieval of Methane Concentration from
Imaging Spectrometer Data Using Sparsity Prior", IEEE TGRS 58(9)): for each group of
detector columns (pushbroom sensors have per-column noise), estimate the background
mean ``mu`` and covariance ``C`` over the group's valid pixels, scale the unit absorption
target by the mean (``t = target * mu``), and estimate per pixel

    mf = ((x - mu) . C^-1 t - reg) / (R * t . C^-1 t),    R = x . mu / mu . mu  (albedo)

clamped at zero. The sparse variant (mag1c's ``acrwl1mf``) iterates: remove the current
signal ``a = R * mf`` from the data (``x' = x - a t``), re-estimate ``mu``, ``t`` and ``C``,
and reweight with ``reg = 1 / (R * (mf + 1e-9))`` (reweighted l1), 30 times by default.

What we do differently, for speed and robustness (results match mag1c, see tests):

* Low-rank updates. ``x' = x - a t`` changes the covariance by a rank-2 term,
  ``C_k = C_0 - t c^T - c t^T + var(a) t t^T`` with ``c = cov(x, a)``, so every iteration
  applies Woodbury's identity to the FIRST inverse ``C_0^-1`` (a 2x2 solve) instead of
  recomputing and refactorising ``C``: O(N p) per iteration instead of O(N p^2 + p^3).
  An iteration is one sweep ``(x - mu0) . w`` over the group's N pixels plus
  ``c = sum_i a_i (x_i - mu0) / n`` over the support of ``a`` only (after a few
  reweighting steps most pixels are clamped to 0). It cannot shrink to per-pixel
  scalars: ``w`` mixes ``C0^-1 c`` (``c`` changes with the clamped signal ``a``) and
  ``C0^-1 t_k`` (``t_k = target * (mu0 - abar t_{k-1})`` leaves any fixed subspace).
* Memory layout. The cube is (rows, cols, ~285 bands), the window ~50 bands: each chunk
  of columns is first packed, reading the cube in memory order (parallel over rows),
  into (cols, rows, window) in ``dtype``; each group is then transposed in cache to
  band-major (window, pixels) so the per-pixel sweeps vectorise over pixels. The
  covariance uses 4 x 4 band tiles with float64 accumulators.
* Fast math (``_FLAGS``): reassociation and contraction (vectorised sums, FMA) but not
  ``nnan``/``ninf``, so the NaN/inf checks of the masks stay valid. The rounding
  changes the results only at the level of summation order (see the parity tests).
* Regularisation. A ridge ``ridge * trace(C_0) / p`` is added to the diagonal of ``C_0``
  (default 1e-9 in float32, 1e-10 in float64), so the Cholesky factorisation never fails on an
  ill-conditioned column (even one with fewer valid pixels than bands), in float32 too.
  The covariance is accumulated and the small p x p algebra runs in float64; only the
  per-pixel passes over the cube run in ``dtype``. (Accumulating the covariance in
  float32 is faster but the 30 reweighting steps amplify its rounding: correlation with
  float64 mag1c drops from 0.999999 to 0.9995.)
* Shrinkage (optional, ``shrinkage`` in [0, 1], default 0 = mag1c's default): ``C_0`` is
  linearly shrunk toward its diagonal, ``(1 - s) C_0 + s diag(C_0)`` (mag1c's
  ``--covariance-lerp-alpha``). We shrink ``C_0`` only; the rank-2 updates are applied
  unshrunk (mag1c re-shrinks every iteration), which differs only when ``s > 0``.
* Masks. Pixels with a NaN/inf or a value below -9990 (EMIT nodata -9999) in any used
  band, pixels flagged in ``mask`` (True = bad, e.g. saturated) and pixels with albedo
  ``R <= 0`` are left out of all statistics and get NaN in every output. Statistics
  divide by the number of valid pixels (mag1c divides the covariance by all pixels).
* Column groups. The last group is shifted left to keep ``group`` columns (as mag1c
  does) and writes only the columns no earlier group owns; every row and column of the
  scene gets a value (edge lines are never dropped).

Outputs: enhancement (ppm·m), albedo factor ``R`` and a per-pixel 1-sigma uncertainty
``1 / (R sqrt(t . C^-1 t))`` (ppm·m): the background-clutter noise of the linear
estimate with the final iteration's statistics (no model or sparsity error).

Units: like mag1c we work internally with ``target * 1e5`` and scale the result by 1e5,
so the l1 weights (and the results) are those of mag1c.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

from gravitas.kernels.errors import (
    EmptyColumnError,
    EmptyWindowError,
    NotHyperspectralError,
    ShapeMismatchError,
)

MIN_BANDS = 10  # fewer bands than this is multispectral, not a matched-filter input
SCALING = 1e5  # mag1c's internal target/result scaling
EPSILON = 1e-9  # mag1c's l1 reweighting epsilon
NODATA_BELOW = -9990.0  # radiance below this is a fill value (EMIT/AVIRIS use -9999)
_FLAGS = {"nsz", "arcp", "contract", "afn", "reassoc"}  # fast math, but NaN checks stay valid
DEFAULT_RIDGE = {"float32": 1e-9, "float64": 1e-10}  # relative to trace(C)/bands
_CHUNK_GROUPS = 128  # column groups per kernel call (progress granularity)
_SCHEDULE_GROUPS = 4  # groups handed to a thread at a time (dynamic: the cores are shared)
_SCHEDULE_ROWS = 32  # rows handed to a thread at a time when packing

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class MatchedFilterResult:
    """Per-pixel outputs (rows, cols): enhancement and uncertainty in ppm·m, albedo factor."""

    enhancement: np.ndarray
    albedo: np.ndarray
    uncertainty: np.ndarray


@numba.njit(cache=True, fastmath=_FLAGS)
def _cholesky_inverse(c: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix via Cholesky (float64, in place copy)."""
    p = c.shape[0]
    low = np.zeros((p, p))
    for j in range(p):
        s = c[j, j]
        for k in range(j):
            s -= low[j, k] * low[j, k]
        if s <= 0.0:
            s = 1e-300  # only reachable if the ridge was disabled; keeps the result finite
        d = np.sqrt(s)
        low[j, j] = d
        for i in range(j + 1, p):
            s = c[i, j]
            for k in range(j):
                s -= low[i, k] * low[j, k]
            low[i, j] = s / d
    inv_low = np.zeros((p, p))  # inverse of the lower factor
    for j in range(p):
        inv_low[j, j] = 1.0 / low[j, j]
        for i in range(j + 1, p):
            s = 0.0
            for k in range(j, i):
                s -= low[i, k] * inv_low[k, j]
            inv_low[i, j] = s / low[i, i]
    out = np.zeros((p, p))
    for i in range(p):
        for j in range(i + 1):
            s = 0.0
            for k in range(i, p):
                s += inv_low[k, i] * inv_low[k, j]
            out[i, j] = s
            out[j, i] = s
    return out


@numba.njit(cache=True, fastmath=_FLAGS)
def _matvec(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    p = a.shape[0]
    out = np.zeros(p)
    for i in range(p):
        s = 0.0
        for j in range(p):
            s += a[i, j] * x[j]
        out[i] = s
    return out


@numba.njit(cache=True, fastmath=_FLAGS)
def _dot(a: np.ndarray, b: np.ndarray) -> float:
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


@numba.njit(parallel=True, cache=True)
def _pack(
    rad: np.ndarray, bands: np.ndarray, first: int, c_lo: int, c_hi: int, packed: np.ndarray
) -> None:
    """Copy the filter bands of columns ``c_lo:c_hi`` into ``packed`` (cols, rows, p).

    The cube is (rows, cols, bands) with ~285 bands, of which the window uses ~50: read
    per column, every row is a different page and the walk is latency bound. Here rows
    are read in memory order (parallel over rows) so the prefetcher streams the cube, and
    each pixel's window lands contiguous (pixel-major, bands last) in the working dtype. A
    contiguous window (``first >= 0``, the usual case) is copied as one run per pixel.
    """
    rows = rad.shape[0]
    p = bands.shape[0]
    for r in numba.prange(rows):
        for c in range(c_lo, c_hi):
            dst = packed[c - c_lo, r]
            if first >= 0:
                src = rad[r, c, first : first + p]
                for b in range(p):
                    dst[b] = src[b]
            else:
                for b in range(p):
                    dst[b] = rad[r, c, bands[b]]


@numba.njit(cache=True, fastmath=_FLAGS)
def _load_group(
    packed: np.ndarray, bad: np.ndarray, k0: int, c0: int, width: int, xt: np.ndarray,
    valid: np.ndarray,
) -> int:  # fmt: skip
    """Transpose the group into band-major ``xt`` (p, rows * width), pixel ``i = r * width + j``.

    ``packed[k0 + j]`` holds column ``c0 + j``. Flags pixels with a non-finite or fill
    value in any band or set in ``bad``; their columns of ``xt`` are zeroed so that plain
    sums over ``xt`` are sums over the valid pixels. Returns the number of valid pixels.
    """
    rows = packed.shape[1]
    p = packed.shape[2]
    n = 0
    for r in range(rows):
        for j in range(width):
            i = r * width + j
            px = packed[k0 + j, r]
            ok = not bad[r, c0 + j]
            for b in range(p):
                v = px[b]
                if not np.isfinite(v) or v < NODATA_BELOW:
                    ok = False
                xt[b, i] = v
            valid[i] = ok
            if ok:
                n += 1
            else:
                for b in range(p):
                    xt[b, i] = 0.0
    return n


@numba.njit(cache=True, fastmath=_FLAGS)
def _band_means(xt: np.ndarray, n: int, mu: np.ndarray) -> None:
    """mu[b] = sum_i xt[b, i] / n in float64 (invalid pixels are zero columns of ``xt``)."""
    for b in range(xt.shape[0]):
        row = xt[b]
        s = 0.0
        for i in range(xt.shape[1]):
            s += row[i]
        mu[b] = s / n


@numba.njit(cache=True, fastmath=_FLAGS)
def _albedo(xt: np.ndarray, mu: np.ndarray, valid: np.ndarray, rr: np.ndarray) -> int:
    """Albedo factor ``R_i = x_i . mu / mu . mu`` (float64 sums, stored in the working dtype).

    Valid pixels with ``R <= 0`` become invalid (their column of ``xt`` is zeroed);
    invalid pixels get ``R = 1`` so the per-pixel divisions stay finite (their outputs
    are NaN anyway). Returns the number of pixels dropped.
    """
    p, m = xt.shape
    mumu = _dot(mu, mu)
    acc = np.zeros(m)
    for b in range(p):
        mb = mu[b]
        row = xt[b]
        for i in range(m):
            acc[i] += row[i] * mb
    dropped = 0
    for i in range(m):
        rr[i] = acc[i] / mumu
        if valid[i] and not rr[i] > 0.0:
            valid[i] = False
            dropped += 1
            for b in range(p):
                xt[b, i] = 0.0
        if not valid[i]:
            rr[i] = 1.0
    return dropped


@numba.njit(cache=True, fastmath=_FLAGS)
def _centre(xt: np.ndarray, mu: np.ndarray, valid: np.ndarray, x64: np.ndarray) -> None:
    """xt[b, i] -= mu[b] on valid pixels (0 elsewhere); a float64 copy goes to ``x64``.

    ``x64`` has ``p`` rounded up to a multiple of 4 rows; the extra rows stay zero.
    """
    p, m = xt.shape
    mw = np.zeros(p + 1, dtype=xt.dtype)
    mw[:p] = mu  # the mean rounded to the working dtype, as the data
    zero = mw[p]
    for b in range(p):
        row = xt[b]
        mb = mw[b]
        out = x64[b]
        for i in range(m):
            v = row[i] - mb if valid[i] else zero
            row[i] = v
            out[i] = v


@numba.njit(cache=True, fastmath=_FLAGS)
def _covariance(x64: np.ndarray, n: int, cov: np.ndarray) -> None:
    """cov = x64 x64^T / n for centred band-major data (p4, pixels), p4 a multiple of 4.

    Register-blocked: each 4 x 4 tile of band pairs keeps 16 float64 accumulators and
    sweeps the pixels once (8 loads per 16 multiply-adds, vectorised over pixels) instead
    of one sweep per band pair (2 loads per multiply-add). Products of float32 values are
    exact in float64, so this equals the float64 sum up to summation order.
    """
    p4, m = x64.shape
    for a0 in range(0, p4, 4):
        xa0 = x64[a0]
        xa1 = x64[a0 + 1]
        xa2 = x64[a0 + 2]
        xa3 = x64[a0 + 3]
        for b0 in range(0, a0 + 1, 4):
            xb0 = x64[b0]
            xb1 = x64[b0 + 1]
            xb2 = x64[b0 + 2]
            xb3 = x64[b0 + 3]
            s00 = s01 = s02 = s03 = 0.0
            s10 = s11 = s12 = s13 = 0.0
            s20 = s21 = s22 = s23 = 0.0
            s30 = s31 = s32 = s33 = 0.0
            for i in range(m):
                v0 = xa0[i]
                v1 = xa1[i]
                v2 = xa2[i]
                v3 = xa3[i]
                u0 = xb0[i]
                u1 = xb1[i]
                u2 = xb2[i]
                u3 = xb3[i]
                s00 += v0 * u0
                s01 += v0 * u1
                s02 += v0 * u2
                s03 += v0 * u3
                s10 += v1 * u0
                s11 += v1 * u1
                s12 += v1 * u2
                s13 += v1 * u3
                s20 += v2 * u0
                s21 += v2 * u1
                s22 += v2 * u2
                s23 += v2 * u3
                s30 += v3 * u0
                s31 += v3 * u1
                s32 += v3 * u2
                s33 += v3 * u3
            tile = (
                (s00, s01, s02, s03),
                (s10, s11, s12, s13),
                (s20, s21, s22, s23),
                (s30, s31, s32, s33),
            )
            for da in range(4):
                row = tile[da]
                for db in range(4):
                    cov[a0 + da, b0 + db] = row[db] / n
                    cov[b0 + db, a0 + da] = row[db] / n


@numba.njit(cache=True, fastmath=_FLAGS)
def _apply(xt: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    """out[i] = sum_b xt[b, i] * w[b] in the working dtype (band-major: vectorises over pixels).

    One sweep per band with ``out`` (a few kB) staying in L1. Blocking several bands per
    sweep measured 3x slower: the compiler no longer vectorises the pixel loop.
    """
    n = xt.shape[1]
    wc = np.empty(w.shape[0], dtype=xt.dtype)
    wc[:] = w  # cast once to the working dtype so the pixel loop stays in it
    for i in range(n):
        out[i] = 0.0
    for b in range(xt.shape[0]):
        wb = wc[b]
        row = xt[b]
        for i in range(n):
            out[i] += row[i] * wb


@numba.njit(cache=True, fastmath=_FLAGS)
def _signal_support(
    mf: np.ndarray, rr: np.ndarray, a: np.ndarray, support: np.ndarray, a_sup: np.ndarray
) -> tuple[int, float]:
    """Signal ``a_i = R_i mf_i`` (dense in ``a``) and its support ``a_i != 0``, compacted.

    After the first reweighted-l1 steps most background pixels are clamped to 0, so the
    cross covariance only needs the support. Invalid pixels have ``mf = 0`` and never
    enter. Branch-free compaction (the support is random: a branch would mispredict).
    Returns (support size, sum of a in float64).
    """
    k = 0
    total = 0.0
    for i in range(mf.shape[0]):
        v = rr[i] * mf[i]
        a[i] = v
        support[k] = i
        a_sup[k] = v
        total += v
        k += mf[i] != 0.0
    return k, total


@numba.njit(cache=True, fastmath=_FLAGS)
def _cross_cov(
    xt: np.ndarray,
    packed: np.ndarray,
    k0: int,
    width: int,
    mu: np.ndarray,
    a: np.ndarray,
    support: np.ndarray,
    a_sup: np.ndarray,
    k: int,
    total: float,
    n: int,
    cvec: np.ndarray,
) -> None:
    """cvec = cov(x, a) = sum_i a_i (x_i - mu0) / n, the rank-2 update's second vector.

    Sparse support (``4 k < pixels``, the usual case after a few iterations): sum over
    the support pixels' contiguous spectra in ``packed`` in float64, O(k p), as
    ``(sum_i a_i x_i - mu0 sum_i a_i) / n``. Dense support: one band-major sweep over the
    centred ``xt`` (zero where invalid) in the working dtype, O(rows p).
    """
    p = xt.shape[0]
    m = xt.shape[1]
    if 4 * k < m:
        acc = np.zeros(p)
        for q in range(k):
            i = support[q]
            px = packed[k0 + i % width, i // width]
            aq = np.float64(a_sup[q])
            for b in range(p):
                acc[b] += aq * px[b]
        for b in range(p):
            cvec[b] = (acc[b] - mu[b] * total) / n
    else:
        zero = a[0] - a[0]  # 0 in the working dtype: keeps the accumulator in it
        for b in range(p):
            row = xt[b]
            s = zero
            for i in range(m):
                s += row[i] * a[i]
            cvec[b] = s / n


@numba.njit(cache=True)
def _fill_nan(
    out_mf: np.ndarray, out_alb: np.ndarray, out_unc: np.ndarray, c0: int, width: int, w0: int
) -> None:
    for r in range(out_mf.shape[0]):
        for j in range(w0, width):
            out_mf[r, c0 + j] = np.nan
            out_alb[r, c0 + j] = np.nan
            out_unc[r, c0 + j] = np.nan


@numba.njit(cache=True, fastmath=_FLAGS)
def _background(x64: np.ndarray, p: int, n: int, shrinkage: float, ridge: float) -> np.ndarray:
    """C0^-1 of the centred group: covariance, optional shrinkage, relative ridge, inverse."""
    p4 = x64.shape[0]
    cov4 = np.empty((p4, p4))
    _covariance(x64, n, cov4)
    cov = np.empty((p, p))
    trace = 0.0
    for a in range(p):
        for b in range(p):
            cov[a, b] = cov4[a, b]
        trace += cov[a, a]
    if shrinkage > 0.0:
        for a in range(p):
            for b in range(p):
                if a != b:
                    cov[a, b] *= 1.0 - shrinkage
    lam = ridge * trace / p
    for a in range(p):
        cov[a, a] += lam
    return _cholesky_inverse(cov)


@numba.njit(cache=True, fastmath=_FLAGS)
def _reweight(
    proj: np.ndarray, inv_rr: np.ndarray, offset: float, inv_norm: float, eps: float,
    mf: np.ndarray,
) -> None:  # fmt: skip
    """One reweighted-l1 step, ``mf = max(0, ((x - mu) . w - reg) / (R norm))``.

    With ``reg = 1 / (R (mf + eps))`` this is ``(proj + offset) g - g / (R (mf + eps))``,
    ``g = 1 / (R norm)``: one division per pixel, all in the working dtype (the scalars
    come in already rounded to it), branch-free so it vectorises. ``eps = inf`` turns the
    l1 term off (non-sparse mode); ``inv_rr = 0`` keeps invalid pixels at 0.
    """
    for i in range(proj.shape[0]):
        g = inv_rr[i] * inv_norm
        m = (proj[i] + offset) * g - g * inv_rr[i] / (mf[i] + eps)
        mf[i] = max(m, 0.0)  # mag1c clamps every iteration


@numba.njit(cache=True, fastmath=_FLAGS)
def _column_group(
    packed: np.ndarray,
    k0: int,
    template: np.ndarray,
    bad: np.ndarray,
    c0: int,
    width: int,
    write_from: int,
    iterations: int,
    sparse: bool,
    albedo: bool,
    nonnegative: bool,
    shrinkage: float,
    ridge: float,
    out_mf: np.ndarray,
    out_alb: np.ndarray,
    out_unc: np.ndarray,
) -> int:
    """Filter one column group; returns its number of valid pixels (outputs are set).

    After the O(rows p^2) background statistics, every pass costs one O(rows p) sweep
    (``_apply``) plus an O(support p) cross covariance: the covariance itself is never
    rebuilt (rank-2 Woodbury update of ``C0^-1``, see the module docstring).
    """
    rows = packed.shape[1]
    p = packed.shape[2]
    n_all = rows * width
    xt = np.empty((p, n_all), dtype=packed.dtype)  # band-major group data
    valid = np.empty(n_all, dtype=np.bool_)
    n = _load_group(packed, bad, k0, c0, width, xt, valid)
    if n < 2:
        _fill_nan(out_mf, out_alb, out_unc, c0, width, write_from)
        return n
    mu0 = np.empty(p)
    _band_means(xt, n, mu0)
    rr = np.ones(n_all, dtype=packed.dtype)
    if albedo:
        dropped = _albedo(xt, mu0, valid, rr)
        if dropped:
            n -= dropped
            if n < 2:
                _fill_nan(out_mf, out_alb, out_unc, c0, width, write_from)
                return n
            _band_means(xt, n, mu0)
    else:
        for i in range(n_all):
            if not valid[i]:
                rr[i] = 1.0
    x64 = np.zeros(((p + 3) // 4 * 4, n_all))
    _centre(xt, mu0, valid, x64)
    ci = _background(x64, p, n, shrinkage, ridge)
    # classic pass
    t_prev = template * mu0
    ci_t_prev = _matvec(ci, t_prev)
    norm = _dot(t_prev, ci_t_prev)
    proj = np.empty(n_all, dtype=packed.dtype)
    mf = np.empty(n_all, dtype=packed.dtype)
    _apply(xt, ci_t_prev, proj)
    for i in range(n_all):
        m = proj[i] / (rr[i] * norm)
        if nonnegative and not m > 0.0:
            m = 0.0
        mf[i] = m if valid[i] else 0.0
    last_norm = norm
    support = np.empty(n_all, dtype=np.int64)
    a = np.empty(n_all, dtype=packed.dtype)
    a_sup = np.empty(n_all, dtype=packed.dtype)
    cvec = np.empty(p)
    inv_rr = np.empty(n_all, dtype=packed.dtype)  # 1 / R on valid pixels, 0 elsewhere
    for i in range(n_all):
        inv_rr[i] = 1.0 / rr[i] if valid[i] else 0.0
    par = np.empty(3, dtype=packed.dtype)  # per-iteration scalars in the working dtype
    for _ in range(iterations):
        # signal estimate a = R * mf on its support, mean and variance over valid pixels
        k, total = _signal_support(mf, rr, a, support, a_sup)
        abar = total / n
        var_a = (n - k) * abar * abar  # valid pixels outside the support have a = 0
        for q in range(k):
            d = a_sup[q] - abar
            var_a += d * d
        var_a /= n
        _cross_cov(xt, packed, k0, width, mu0, a, support, a_sup, k, total, n, cvec)
        mu_k = mu0 - abar * t_prev
        t_k = template * mu_k
        # Woodbury on C_k = C0 + U M U^T, U = [t_prev, c], M = [[var_a, -1], [-1, 0]]
        ci_c = _matvec(ci, cvec)
        ci_t = _matvec(ci, t_k)
        g11 = _dot(t_prev, ci_t_prev)
        g12 = _dot(t_prev, ci_c)
        g22 = _dot(cvec, ci_c)
        k11 = g11
        k12 = g12 - 1.0
        k22 = g22 - var_a
        y1 = _dot(t_prev, ci_t)
        y2 = _dot(cvec, ci_t)
        det = k11 * k22 - k12 * k12
        if det != 0.0:
            z1 = (k22 * y1 - k12 * y2) / det
            z2 = (k11 * y2 - k12 * y1) / det
        else:
            z1 = 0.0
            z2 = 0.0
        w = ci_t - z1 * ci_t_prev - z2 * ci_c
        norm = _dot(t_k, w)
        last_norm = norm
        if norm < 1.0:
            norm = 1.0
        _apply(xt, w, proj)
        par[0] = abar * _dot(t_prev, w)  # (x - mu_k) . w = (x - mu0) . w + abar t_prev . w
        par[1] = 1.0 / norm
        par[2] = EPSILON if sparse else np.inf
        _reweight(proj, inv_rr, par[0], par[1], par[2], mf)
        t_prev = t_k
        ci_t_prev = ci_t
    sigma = 1.0 / np.sqrt(last_norm) if last_norm > 0.0 else np.nan
    for r in range(rows):
        for j in range(write_from, width):
            i = r * width + j
            if valid[i]:
                out_mf[r, c0 + j] = mf[i] * SCALING
                out_alb[r, c0 + j] = rr[i]
                out_unc[r, c0 + j] = sigma * SCALING / rr[i]
            else:
                out_mf[r, c0 + j] = np.nan
                out_alb[r, c0 + j] = np.nan
                out_unc[r, c0 + j] = np.nan
    return n


@numba.njit(cache=True)
def _group_start(g: int, group: int, cols: int) -> tuple[int, int, int]:
    """(first column, width, first column to write) of group ``g``; the last is shifted left."""
    c0 = g * group
    width = min(group, cols)
    write_from = 0
    if c0 + width > cols:  # last group: shift left, write only the new columns
        write_from = c0 + width - cols
        c0 = cols - width
    return c0, width, write_from


@numba.njit(parallel=True, cache=True)
def _filter_groups(
    packed: np.ndarray,
    c_lo: int,
    template: np.ndarray,
    bad: np.ndarray,
    g_start: int,
    g_stop: int,
    group: int,
    iterations: int,
    sparse: bool,
    albedo: bool,
    nonnegative: bool,
    shrinkage: float,
    ridge: float,
    out_mf: np.ndarray,
    out_alb: np.ndarray,
    out_unc: np.ndarray,
    counts: np.ndarray,
) -> None:
    """Groups ``g_start:g_stop`` in parallel; ``packed[k]`` holds column ``c_lo + k``."""
    cols = bad.shape[1]
    for g in numba.prange(g_start, g_stop):
        c0, width, write_from = _group_start(g, group, cols)
        counts[g] = _column_group(
            packed, c0 - c_lo, template, bad, c0, width, write_from, iterations, sparse,
            albedo, nonnegative, shrinkage, ridge, out_mf, out_alb, out_unc,
        )  # fmt: skip


def _band_indices(n_bands: int, bands: object) -> np.ndarray:
    if bands is None:
        return np.arange(n_bands, dtype=np.int64)
    arr = np.asarray(bands)
    if arr.dtype == np.bool_:
        if arr.shape != (n_bands,):
            raise ShapeMismatchError(
                f"band mask has shape {arr.shape} but the cube has {n_bands} bands; "
                "build it with select_window(wavelengths) from the cube's own wavelengths"
            )
        idx = np.flatnonzero(arr)
    else:
        idx = arr.astype(np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= n_bands):
            raise ShapeMismatchError(f"band indices outside 0..{n_bands - 1}: {idx}")
    if idx.size == 0:
        raise EmptyWindowError("no band selected for the matched filter; widen the window")
    return idx


def retrieve(
    radiance: np.ndarray,
    target: np.ndarray,
    *,
    iterations: int = 30,
    sparse: bool = True,
    albedo: bool = True,
    group: int = 1,
    dtype: type[np.floating] | np.dtype = np.float32,
    mask: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    bands: np.ndarray | None = None,
    nonnegative: bool = True,
    shrinkage: float = 0.0,
    ridge: float | None = None,
) -> MatchedFilterResult:
    """Run the (sparse, albedo-corrected) matched filter on a (rows, cols, bands) radiance cube.

    ``target`` is the unit absorption target in 1/(ppm·m) (see
    :func:`gravitas.kernels.ch4_target.unit_absorption_target`), one value per cube band or
    per selected band. ``bands`` (bool mask over the cube's bands, or indices) selects the
    filter window without copying the cube. ``iterations=0`` gives the classic single
    pass (with ``nonnegative=False``: the unclamped classic matched filter; as in mag1c,
    ``nonnegative`` affects only that first pass, iterations always clamp at zero). ``mask``
    (rows, cols), True = exclude (saturated, cloud, ...). ``progress(done, total)`` is
    called with column counts after each chunk. ``ridge`` (relative to trace/bands)
    defaults to 1e-9 in float32 and 1e-10 in float64. Results are float32 (rows, cols).
    """
    rad = np.asarray(radiance)
    if rad.ndim != 3:
        raise ShapeMismatchError(
            f"radiance must be (rows, cols, bands), got shape {rad.shape}; "
            "reshape a single spectrum or a band stack first"
        )
    rows, cols, n_bands = rad.shape
    if n_bands < MIN_BANDS:
        raise NotHyperspectralError(
            f"radiance has {n_bands} bands; the matched filter needs a hyperspectral cube "
            f"(at least {MIN_BANDS} bands, typically 40+ in 2100-2500 nm)"
        )
    if rows < 1 or cols < 1:
        raise ShapeMismatchError(f"radiance has an empty spatial shape {rad.shape[:2]}")
    idx = _band_indices(n_bands, bands)
    tgt = np.asarray(target, dtype=np.float64).ravel()
    if tgt.size == n_bands and idx.size != n_bands:
        tgt = tgt[idx]
    if tgt.size != idx.size:
        raise ShapeMismatchError(
            f"target has {np.asarray(target).size} values but the filter uses {idx.size} of "
            f"the cube's {n_bands} bands; build the target from the cube's wavelengths"
        )
    if not np.all(np.isfinite(tgt)) or not np.any(tgt != 0):
        raise EmptyWindowError(
            "target is all zero or non-finite in the selected bands; the window lies "
            "outside the CH4 absorption LUT (use 2122-2488 nm)"
        )
    if group < 1:
        raise ShapeMismatchError(f"group must be >= 1 column, got {group}")
    if iterations < 0:
        raise ShapeMismatchError(f"iterations must be >= 0, got {iterations}")
    if not 0.0 <= shrinkage <= 1.0:
        raise ShapeMismatchError(f"shrinkage must be in [0, 1], got {shrinkage}")
    work_dtype = np.dtype(dtype)
    if work_dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ShapeMismatchError(f"dtype must be float32 or float64, got {work_dtype}")
    if rad.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        rad = rad.astype(np.float32)
    bad: np.ndarray
    if mask is None:
        bad = np.zeros((rows, cols), dtype=np.bool_)
    else:
        bad = np.asarray(mask, dtype=np.bool_)
        if bad.shape != (rows, cols):
            raise ShapeMismatchError(
                f"mask has shape {bad.shape} but the cube is {rows} x {cols}; "
                "give a (rows, cols) bool array, True = exclude"
            )
    out_mf = np.empty((rows, cols), dtype=np.float32)
    out_alb = np.empty((rows, cols), dtype=np.float32)
    out_unc = np.empty((rows, cols), dtype=np.float32)
    n_groups = -(-cols // group)
    counts = np.zeros(n_groups, dtype=np.int64)
    template = tgt * SCALING
    if ridge is None:
        ridge = DEFAULT_RIDGE[work_dtype.name]
    contiguous = bool(np.all(np.diff(idx) == 1))
    first = int(idx[0]) if contiguous else -1
    width = min(group, cols)
    span = min(cols, _CHUNK_GROUPS * group + width)  # widest column range of one chunk
    buf = np.empty((span, rows, idx.size), dtype=work_dtype)  # reused: no page faults
    for g0 in range(0, n_groups, _CHUNK_GROUPS):
        g1 = min(n_groups, g0 + _CHUNK_GROUPS)
        c_lo = _group_start(g0, group, cols)[0]
        c_hi = _group_start(g1 - 1, group, cols)[0] + width
        packed = buf[: c_hi - c_lo]
        with numba.parallel_chunksize(_SCHEDULE_ROWS):
            _pack(rad, idx, first, c_lo, c_hi, packed)
        with numba.parallel_chunksize(_SCHEDULE_GROUPS):
            _filter_groups(
                packed, c_lo, template, bad, g0, g1, group, iterations, sparse, albedo,
                nonnegative, float(shrinkage), float(ridge), out_mf, out_alb, out_unc,
                counts,
            )  # fmt: skip
        if progress is not None:
            progress(min(cols, g1 * group), cols)
    empty = np.flatnonzero(counts < 2)
    if empty.size:
        starts = [int(g * group) for g in empty[:10]]
        raise EmptyColumnError(
            f"{empty.size} column group(s) (group={group}) have fewer than 2 valid pixels, "
            f"starting at columns {starts}: all NaN, fill or masked; crop those columns "
            "or use a larger group"
        )
    return MatchedFilterResult(enhancement=out_mf, albedo=out_alb, uncertainty=out_unc)
