"""Errors of the datacube kernels (all :class:`KernelError`: bad input, never retried)."""

from __future__ import annotations

from gravitas.kernels.errors import ShapeMismatchError
from gravitas.schemas.errors import KernelError

__all__ = [
    "BadParameterError",
    "DatacubeKernelError",
    "NoPairsError",
    "PatchTooLargeError",
    "ShapeMismatchError",
    "SplitRatioError",
]


class DatacubeKernelError(KernelError):
    """Root of the datacube step errors."""


class NoPairsError(DatacubeKernelError):
    """No scene of the reference modality matches the others in space and time."""


class PatchTooLargeError(DatacubeKernelError):
    """The patch is larger than the area it should be cut from."""


class SplitRatioError(DatacubeKernelError):
    """Train / val / test ratios that are negative or do not sum to 1."""


class BadParameterError(DatacubeKernelError):
    """A parameter outside its allowed values (method name, level shift, threshold)."""
