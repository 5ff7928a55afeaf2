"""Cut square patches from a cube and attach a categorical label layer.

Cubes are ``(band, y, x)`` or ``(t, band, y, x)`` (any leading axes); patches are cut
on the last two axes. A pixel is valid when it is finite in every leading slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from gravitas.kernels.datacube.errors import (
    BadParameterError,
    PatchTooLargeError,
    ShapeMismatchError,
)

__all__ = [
    "PatchSet",
    "cut_patches",
    "extract_patches",
    "label_patches",
    "patch_origins",
    "valid_fractions",
]


@dataclass(frozen=True)
class PatchSet:
    """The patches kept from one cube."""

    origins: NDArray[np.int64]
    """(n, 2) top-left ``(row, col)`` of each patch in the cube."""
    index: NDArray[np.int64]
    """(n,) position of each patch in the full candidate grid of :func:`patch_origins`."""
    valid_fraction: NDArray[np.float64]
    """(n,) fraction of valid pixels in each patch."""
    data: NDArray[Any]
    """(n, *leading, patch, patch) pixel values."""

    @property
    def rows(self) -> NDArray[np.int64]:
        """Row of each patch's top-left pixel."""
        return self.origins[:, 0]

    @property
    def cols(self) -> NDArray[np.int64]:
        """Column of each patch's top-left pixel."""
        return self.origins[:, 1]


def _starts(extent: int, patch: int, stride: int, include_edge: bool, axis: str) -> list[int]:
    if patch > extent:
        raise PatchTooLargeError(
            f"patch of {patch} px is larger than the area ({extent} px in {axis}); "
            "use a smaller patch_size or a larger bbox / finer level"
        )
    starts = list(range(0, extent - patch + 1, stride))
    if include_edge and starts[-1] != extent - patch:
        starts.append(extent - patch)
    return starts


def patch_origins(
    height: int,
    width: int,
    patch_size: int = 224,
    stride: int | None = None,
    *,
    include_edge: bool = False,
) -> NDArray[np.int64]:
    """Top-left ``(row, col)`` of every patch, row-major.

    ``stride`` defaults to ``patch_size`` (no overlap); smaller strides overlap. With
    ``include_edge`` a last row/column of patches flush with the far edge covers the
    remainder (overlapping its neighbour).
    """
    if patch_size < 1:
        raise BadParameterError(f"patch_size must be >= 1 pixel, got {patch_size}")
    step = patch_size if stride is None else stride
    if step < 1:
        raise BadParameterError(f"stride must be >= 1 pixel, got {stride}")
    rows = _starts(height, patch_size, step, include_edge, "y")
    cols = _starts(width, patch_size, step, include_edge, "x")
    rr, cc = np.meshgrid(np.array(rows, np.int64), np.array(cols, np.int64), indexing="ij")
    return np.stack([rr.ravel(), cc.ravel()], axis=1)


def _check_origins(origins: ArrayLike, shape: tuple[int, ...], patch: int) -> NDArray[np.int64]:
    o = np.asarray(origins, dtype=np.int64).reshape(-1, 2)
    h, w = shape[-2:]
    if o.size and (o.min() < 0 or o[:, 0].max() + patch > h or o[:, 1].max() + patch > w):
        raise ShapeMismatchError(
            f"patch origins with patch {patch} reach outside the {h} x {w} area"
        )
    return o


def _window_sums(mask: NDArray[np.bool_], o: NDArray[np.int64], patch: int) -> NDArray[np.int64]:
    integral = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    integral[1:, 1:] = mask.cumsum(axis=0).cumsum(axis=1)
    r, c = o[:, 0], o[:, 1]
    total: NDArray[np.int64] = (
        integral[r + patch, c + patch]
        - integral[r, c + patch]
        - integral[r + patch, c]
        + integral[r, c]
    )
    return total


def valid_fractions(
    cube: ArrayLike, origins: ArrayLike, patch_size: int = 224
) -> NDArray[np.float64]:
    """Fraction of pixels of each patch that are finite in every leading slice."""
    a = np.asarray(cube)
    if a.ndim < 2:
        raise ShapeMismatchError(f"cube must be (..., y, x), got shape {a.shape}")
    o = _check_origins(origins, a.shape, patch_size)
    valid = np.isfinite(a) if a.dtype.kind in "fc" else np.ones(a.shape, dtype=bool)
    valid2d = np.asarray(valid.reshape(-1, *a.shape[-2:]).all(axis=0), dtype=bool)
    return _window_sums(valid2d, o, patch_size) / float(patch_size * patch_size)


def cut_patches(cube: ArrayLike, origins: ArrayLike, patch_size: int = 224) -> NDArray[Any]:
    """Copy the patches at ``origins`` out of ``(..., y, x)``: ``(n, ..., p, p)``."""
    a = np.asarray(cube)
    if a.ndim < 2:
        raise ShapeMismatchError(f"cube must be (..., y, x), got shape {a.shape}")
    o = _check_origins(origins, a.shape, patch_size)
    if o.shape[0] == 0:
        return np.empty((0, *a.shape[:-2], patch_size, patch_size), dtype=a.dtype)
    view = sliding_window_view(a, (patch_size, patch_size), axis=(-2, -1))  # type: ignore[call-overload]
    tiles = view[..., o[:, 0], o[:, 1], :, :]  # (..., n, p, p)
    return np.moveaxis(tiles, -3, 0)


def extract_patches(
    cube: ArrayLike,
    patch_size: int = 224,
    stride: int | None = None,
    *,
    min_valid_fraction: float = 0.5,
    include_edge: bool = False,
) -> PatchSet:
    """Cut patches over ``(..., y, x)`` and keep those with enough valid pixels."""
    if not 0.0 <= min_valid_fraction <= 1.0:
        raise BadParameterError(f"min_valid_fraction must be in [0, 1], got {min_valid_fraction}")
    a = np.asarray(cube)
    if a.ndim < 2:
        raise ShapeMismatchError(f"cube must be (..., y, x), got shape {a.shape}")
    height, width = a.shape[-2:]
    origins = patch_origins(height, width, patch_size, stride, include_edge=include_edge)
    frac = valid_fractions(a, origins, patch_size)
    keep = np.flatnonzero(frac >= min_valid_fraction)
    return PatchSet(
        origins=origins[keep],
        index=keep.astype(np.int64),
        valid_fraction=frac[keep],
        data=cut_patches(a, origins[keep], patch_size),
    )


def label_patches(
    labels: ArrayLike,
    origins: ArrayLike,
    patch_size: int = 224,
    *,
    nodata: int = 0,
) -> tuple[NDArray[np.int64], NDArray[Any]]:
    """Majority class and per-pixel label tile of each patch of a ``(y, x)`` label layer.

    ``nodata`` pixels do not vote; ties go to the smallest class; a patch without any
    labelled pixel gets ``nodata``. Returns ``(majority (n,), tiles (n, p, p))``.
    """
    lab = np.asarray(labels)
    if lab.ndim != 2 or lab.dtype.kind not in "iub":
        raise ShapeMismatchError(
            f"labels must be a 2-D integer (y, x) layer, got shape {lab.shape} dtype {lab.dtype}"
        )
    o = _check_origins(origins, lab.shape, patch_size)
    tiles = cut_patches(lab, o, patch_size)
    n = o.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.int64), tiles
    flat = tiles.reshape(n, -1)
    classes, inv = np.unique(flat, return_inverse=True)
    k = classes.size
    counts = np.bincount(
        (inv.reshape(n, -1) + k * np.arange(n)[:, None]).ravel(), minlength=n * k
    ).reshape(n, k)
    counts[:, classes == nodata] = 0
    majority = classes[np.argmax(counts, axis=1)].astype(np.int64)
    majority[counts.max(axis=1) == 0] = nodata
    return majority, tiles
