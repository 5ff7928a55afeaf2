"""Errors of the numeric kernels (all :class:`KernelError`, i.e. bad input, never retried)."""

from __future__ import annotations

from gravitas.schemas.errors import KernelError


class MissingWavelengthsError(KernelError):
    """Band centres or FWHM are missing, non-finite or of the wrong length."""


class EmptyWindowError(KernelError):
    """No band of the sensor falls inside the requested wavelength window."""


class ShapeMismatchError(KernelError):
    """Cube, target, wavelengths or mask disagree in shape."""


class NotHyperspectralError(KernelError):
    """The input has too few bands for a spectral matched filter."""


class EmptyColumnError(KernelError):
    """A column (group) has too few valid pixels to estimate background statistics."""
