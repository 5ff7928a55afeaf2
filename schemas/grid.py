"""The nested lat/lon grid as a value: :class:`GridSpec` and its validation rules.

PAIRS-style power-of-two levels: level ``l`` (1..29) has square pixels of
``1e-6 * 2**(29 - l)`` degrees, anchored at lon -180, lat -90. Pixel ``x`` grows east,
``y`` grows north. The numeric functions live in :mod:`gravitas.kernels.grid`; this
module only holds the spec and the checks every layer of the system shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gravitas.schemas.errors import InputError

__all__ = [
    "BLOCK_SIZE",
    "MAX_LEVEL",
    "MIN_LEVEL",
    "ORIGIN",
    "GridError",
    "GridSpec",
    "check_bbox",
    "check_level",
    "check_lonlat",
    "pixel_size",
]

MIN_LEVEL = 1
"""Coarsest level (pixels of 268.4 degrees)."""
MAX_LEVEL = 29
"""Finest level (pixels of 1e-6 degrees, about 11 cm)."""
BLOCK_SIZE = 256
"""Blocks are ``BLOCK_SIZE x BLOCK_SIZE`` pixels."""
ORIGIN = (-180.0, -90.0)
"""(lon, lat) of the south-west corner of pixel (0, 0) at every level."""


class GridError(InputError):
    """A level, coordinate or bounding box outside the grid."""


def check_level(level: int) -> int:
    """Return ``level`` if it is an int in 1..29, else raise :class:`GridError`."""
    if isinstance(level, bool) or not isinstance(level, int):
        raise GridError(f"level must be an int in 1..29, got {level!r}")
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise GridError(f"level must be in {MIN_LEVEL}..{MAX_LEVEL}, got {level}")
    return level


def pixel_size(level: int) -> float:
    """Pixel size in degrees at ``level``: ``1e-6 * 2**(29 - level)``."""
    return 1e-6 * 2.0 ** (MAX_LEVEL - check_level(level))


def check_lonlat(lon: float, lat: float) -> None:
    """Raise :class:`GridError` unless -180 <= lon <= 180 and -90 <= lat <= 90."""
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise GridError(f"lon must be in [-180, 180], got {lon}")
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise GridError(f"lat must be in [-90, 90], got {lat}")


def check_bbox(bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Validate ``(west, south, east, north)`` in degrees; return it as floats.

    Antimeridian-crossing boxes (west > east) are rejected: split them in two.
    """
    if len(bbox) != 4:
        raise GridError(f"bbox must be (west, south, east, north), got {bbox!r}")
    west, south, east, north = (float(v) for v in bbox)
    check_lonlat(west, south)
    check_lonlat(east, north)
    if west > east:
        raise GridError(
            f"bbox west must be <= east, got west={west} east={east}; "
            "split a box crossing the antimeridian in two"
        )
    if south > north:
        raise GridError(f"bbox south must be <= north, got south={south} north={north}")
    return west, south, east, north


@dataclass(frozen=True)
class GridSpec:
    """One level of the nested grid: its level, pixel size (degrees) and origin."""

    level: int
    """Grid level, 1 (coarsest) .. 29 (finest)."""
    pixel_size: float = field(init=False)
    """Pixel edge in degrees, ``1e-6 * 2**(29 - level)``."""
    origin: tuple[float, float] = field(init=False, default=ORIGIN)
    """(lon, lat) of the south-west corner of pixel (0, 0)."""
    block_size: int = field(init=False, default=BLOCK_SIZE)
    """Pixels per block edge."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "pixel_size", pixel_size(self.level))

    @property
    def width(self) -> int:
        """Number of pixel columns needed to span 360 degrees of longitude."""
        return math.ceil(360.0 / self.pixel_size)

    @property
    def height(self) -> int:
        """Number of pixel rows needed to span 180 degrees of latitude."""
        return math.ceil(180.0 / self.pixel_size)

    @property
    def block_width(self) -> int:
        """Number of block columns spanning the globe."""
        return -(-self.width // BLOCK_SIZE)

    @property
    def block_height(self) -> int:
        """Number of block rows spanning the globe."""
        return -(-self.height // BLOCK_SIZE)
