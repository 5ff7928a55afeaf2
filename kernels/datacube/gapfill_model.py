"""Gap filling with a model: a random forest or gradient boosting per band, trained on
the cube's valid pixels to predict the missing ones from auxiliary features.

Features of a pixel ``(t, y, x)`` of band ``b``: the linear interpolation in time of
``b`` (:func:`fill_temporal`), the nearest earlier and later valid values of ``b`` and
their distance in days, the other bands at ``t`` (missing stays NaN: both regressors
split on missing values), the season (day of year as sine and cosine), the position,
and any static auxiliary layers (elevation, land cover). Valid pixels are never changed;
what the model cannot reach (a band with no valid pixel) is then filled spatially
(:func:`fill_spatial`), as :func:`gap_fill` does.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from threadpoolctl import threadpool_limits

from gravitas.kernels.datacube.errors import BadParameterError, ShapeMismatchError
from gravitas.kernels.datacube.gapfill import fill_spatial, fill_temporal

__all__ = ["GapFillMethod", "fill_model", "gap_fill_with"]

GapFillMethod = Literal["interpolate", "forest", "boosting"]
DAY = 86400.0


def _neighbours(band: NDArray[np.float64], t: NDArray[np.float64]) -> list[NDArray[np.float64]]:
    """Previous / next valid value of each pixel and their distance in days."""
    nt = band.shape[0]
    out = []
    for order in (range(nt), range(nt - 1, -1, -1)):
        last_v = np.full(band.shape[1:], np.nan)
        last_t = np.full(band.shape[1:], np.nan)
        vals = np.empty_like(band)
        dist = np.empty_like(band)
        for k in order:
            vals[k], dist[k] = last_v, np.abs(t[k] - last_t) / DAY
            ok = np.isfinite(band[k])
            last_v = np.where(ok, band[k], last_v)
            last_t = np.where(ok, t[k], last_t)
        out += [vals, dist]
    return out


def _design(
    cube: NDArray[np.float64], b: int, t: NDArray[np.float64], aux: NDArray[np.float64] | None
) -> NDArray[np.float64]:
    """``(t * y * x, n_features)`` for band ``b`` of a ``(t, band, y, x)`` cube."""
    nt, nb, ny, nx = cube.shape
    band = cube[:, b]
    interp, _ = fill_temporal(band, t)
    cols = [interp, *_neighbours(band, t)]
    cols += [cube[:, o] for o in range(nb) if o != b]
    doy = 2 * np.pi * ((t / DAY) % 365.25) / 365.25
    shape = (nt, ny, nx)
    cols += [np.broadcast_to(f[:, None, None], shape) for f in (np.sin(doy), np.cos(doy))]
    yy, xx = np.meshgrid(np.arange(ny, dtype=float), np.arange(nx, dtype=float), indexing="ij")
    cols += [np.broadcast_to(yy, shape), np.broadcast_to(xx, shape)]
    if aux is not None:
        cols += [np.broadcast_to(a, shape) for a in aux]
    return np.stack([np.asarray(c, np.float64).ravel() for c in cols], axis=1)


def _regressor(method: str, seed: int) -> Any:
    if method == "forest":
        return RandomForestRegressor(n_estimators=20, min_samples_leaf=3, max_features=0.5,
                                     random_state=seed, n_jobs=1)  # fmt: skip
    if method == "boosting":
        return HistGradientBoostingRegressor(max_iter=100, learning_rate=0.15, random_state=seed)
    raise BadParameterError(f"unknown gap-fill model {method!r}; use 'forest' or 'boosting'")


def fill_model(
    cube: ArrayLike,
    times: ArrayLike,
    method: Literal["forest", "boosting"] = "boosting",
    *,
    aux: ArrayLike | None = None,
    seed: int = 0,
    max_train: int = 20_000,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Fill ``(t, band, y, x)`` (or ``(t, y, x)``) with a model per band; ``times`` are
    seconds; ``aux`` static ``(k, y, x)`` layers. Returns the filled cube and the mask
    of pixels that were missing and got a value."""
    _regressor(method, seed)  # refuses an unknown method before any work
    a = np.asarray(cube, dtype=np.float64)
    squeeze = a.ndim == 3
    if squeeze:
        a = a[:, None]
    if a.ndim != 4:
        raise ShapeMismatchError(f"fill_model needs (t, band, y, x) or (t, y, x), got {a.shape}")
    t = np.asarray(times, dtype=np.float64).ravel()
    if t.size != a.shape[0] or np.any(np.diff(t) <= 0):
        raise BadParameterError("fill_model: one strictly increasing time per step is needed")
    extra = None if aux is None else np.asarray(aux, dtype=np.float64)
    if extra is not None and (extra.ndim != 3 or extra.shape[1:] != a.shape[2:]):
        raise ShapeMismatchError(
            f"aux must be (k, y, x) with y, x = {a.shape[2:]}, got {extra.shape}"
        )
    out = a.copy()
    rng = np.random.default_rng(seed)
    for b in range(a.shape[1]):
        y = a[:, b].ravel()
        ok = np.isfinite(y)
        if ok.all() or ok.sum() < 20:
            continue
        X = _design(a, b, t, extra)
        train = np.flatnonzero(ok)
        if train.size > max_train:
            train = np.sort(rng.choice(train, max_train, replace=False))
        miss = np.flatnonzero(~ok)
        with threadpool_limits(1):  # OpenMP threads thrash on a shared machine
            model = _regressor(method, seed).fit(X[train], y[train])
            flat = out[:, b].ravel()  # a copy: the band is not contiguous
            flat[miss] = model.predict(X[miss])
        out[:, b] = flat.reshape(out[:, b].shape)
    spatial, _ = fill_spatial(out)
    done = np.asarray(spatial[:, 0] if squeeze else spatial, np.float64)
    return done, ~np.isfinite(np.asarray(cube, np.float64)) & np.isfinite(done)


def gap_fill_with(
    method: GapFillMethod, cube: ArrayLike, times: ArrayLike, seed: int = 0
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The datacube's gap fill by name: ``interpolate`` (temporal, then spatial nearest)
    or a model (``forest`` / ``boosting``) on ``(t, band, y, x)`` or ``(t, n, band, y, x)``."""
    from gravitas.kernels.datacube.gapfill import gap_fill

    if method == "interpolate":
        filled, mask = gap_fill(cube, times)
        return np.asarray(filled, np.float64), mask
    a = np.asarray(cube)
    return fill_model(a, times, method, seed=seed)
