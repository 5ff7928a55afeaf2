"""Extension helpers for derived products: processing (lineage) and datacube fields."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pystac

__all__ = ["DATACUBE_SCHEMA", "PROCESSING_SCHEMA", "add_datacube", "add_processing"]

PROCESSING_SCHEMA = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
"""The processing extension version gravitas writes."""
DATACUBE_SCHEMA = "https://stac-extensions.github.io/datacube/v2.2.0/schema.json"
"""The datacube extension version gravitas writes."""

_Target = pystac.Item | pystac.Collection


def _fields(target: _Target) -> dict[str, Any]:
    return target.properties if isinstance(target, pystac.Item) else target.extra_fields


def _declare(target: _Target, uri: str) -> None:
    if uri not in target.stac_extensions:
        target.stac_extensions.append(uri)


def add_processing(
    target: _Target,
    lineage: str,
    software: Mapping[str, str] | None = None,
    level: str | None = None,
    facility: str | None = None,
    when: datetime | None = None,
) -> None:
    """Record how a product was made: ``processing:lineage``, ``software`` (name ->
    version), ``level`` (e.g. ``L2``), ``facility`` (the node) and ``datetime``."""
    fields = _fields(target)
    fields["processing:lineage"] = lineage
    if software:
        fields["processing:software"] = dict(software)
    if level:
        fields["processing:level"] = level
    if facility:
        fields["processing:facility"] = facility
    stamp = (when or datetime.now(UTC)).astimezone(UTC)
    fields["processing:datetime"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    _declare(target, PROCESSING_SCHEMA)


def add_datacube(
    target: _Target,
    dimensions: Mapping[str, Mapping[str, Any]],
    variables: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Set ``cube:dimensions`` (name -> {type, axis, extent, step, ...}) and
    ``cube:variables`` (name -> {type, dimensions, unit, ...})."""
    fields = _fields(target)
    fields["cube:dimensions"] = {k: dict(v) for k, v in dimensions.items()}
    if variables:
        fields["cube:variables"] = {k: dict(v) for k, v in variables.items()}
    _declare(target, DATACUBE_SCHEMA)
