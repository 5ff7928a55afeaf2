"""The error hierarchy of gravitas.

One root, :class:`GravitasError`; each area adds small subclasses. Every message names
the bad value and, where there is one, the fix. The runner's error policy
(:mod:`gravitas.streams.errors_policy`) maps these classes to retry or dead-letter.
"""

from __future__ import annotations


class GravitasError(Exception):
    """Root of every error gravitas raises on purpose."""


class ConfigError(GravitasError):
    """A setting is missing or invalid."""


class EventDecodeError(GravitasError):
    """Bytes on a topic are not valid JSON / not an object."""


class EventValidationError(GravitasError):
    """A decoded event violates its topic's schema."""


class UnknownTopicError(GravitasError):
    """A topic name that the topology does not declare."""


class TransportError(GravitasError):
    """The event transport (broker, HTTP edge) failed; usually worth a retry."""


class BrokerError(GravitasError):
    """The local Apache Kafka broker could not be fetched, started or reached."""


class InputError(GravitasError):
    """Bad user input (file, URL, request) that retrying will not fix."""


class UnsafePathError(InputError):
    """A file path or URL outside the allowed roots or schemes."""


class UnsupportedFormatError(InputError):
    """A file whose format gravitas cannot read."""


class CorruptFileError(InputError):
    """A file that claims a known format but cannot be decoded."""


class StorageError(GravitasError):
    """The block store or object store failed."""


class NotFoundError(GravitasError):
    """A layer, item, collection or object that does not exist."""


class KernelError(InputError):
    """A numeric kernel was given arrays it cannot work on (shape, NaN, bands)."""


class RequestError(InputError):
    """A user request (search, datacube, methane job) that cannot be satisfied."""
