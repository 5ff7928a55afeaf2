"""How a scene's files are read (band names, fill values, mask convention, categorical),
kept in its STAC item's properties so a lazy or external scene onboarded later is read
exactly as an ingested one, and so the item's ``raster:bands`` can say the same."""

from __future__ import annotations

from typing import Any

from gravitas.schemas.events import SceneAnnounced

__all__ = [
    "BAND_NAMES",
    "BAND_NODATA",
    "MASK_CONVENTION",
    "NODATA",
    "read_fields",
    "scene_properties",
]

BAND_NAMES = "gravitas:band_names"
NODATA = "gravitas:nodata"
BAND_NODATA = "gravitas:band_nodata"
MASK_CONVENTION = "gravitas:mask_convention"
CATEGORICAL = "gravitas:categorical"


def scene_properties(event: SceneAnnounced) -> dict[str, Any]:
    """The item properties that record how the scene's files are read (only those set)."""
    props: dict[str, Any] = {}
    if event.band_names is not None:
        props[BAND_NAMES] = list(event.band_names)
    if event.nodata is not None:
        props[NODATA] = event.nodata
    if event.band_nodata is not None:
        props[BAND_NODATA] = list(event.band_nodata)
    if event.mask_href is not None:
        props[MASK_CONVENTION] = event.mask_convention
    if event.categorical:
        props[CATEGORICAL] = True
    return props


def read_fields(props: dict[str, Any]) -> dict[str, Any]:
    """:class:`SceneAnnounced` fields back from item properties (validated by the event)."""
    fields: dict[str, Any] = {}
    for key, name in ((BAND_NAMES, "band_names"), (NODATA, "nodata"),
                      (BAND_NODATA, "band_nodata"), (MASK_CONVENTION, "mask_convention"),
                      (CATEGORICAL, "categorical")):  # fmt: skip
        if key in props:
            fields[name] = props[key]
    return fields
