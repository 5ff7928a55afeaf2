"""Errors of the sample-data fetcher (:mod:`gravitas.storage.sampledata`)."""

from __future__ import annotations

from gravitas.schemas.errors import NotFoundError, StorageError


class SampleDataError(StorageError):
    """A sample could not be downloaded, extracted or verified."""


class ChecksumError(SampleDataError):
    """A downloaded archive or an extracted file does not match its pinned sha256."""


class UnknownSampleError(SampleDataError, NotFoundError):
    """A sample or source name that the registry does not list."""
