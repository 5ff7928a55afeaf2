"""Errors of the hyperspectral readers."""

from __future__ import annotations

from gravitas.schemas.errors import CorruptFileError, UnsupportedFormatError


class NotHyperspectralFileError(UnsupportedFormatError):
    """A readable file that holds no hyperspectral radiance cube."""


class EnviHeaderError(CorruptFileError):
    """An ENVI header that is missing, malformed or inconsistent with its data file."""
