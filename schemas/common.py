"""Shared field types: bounding boxes, time ranges, CRS strings and hrefs.

Each validator raises ``ValueError`` with a message that names the bad value; pydantic
turns that into a ``ValidationError`` that also names the field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlparse

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

ALLOWED_HREF_SCHEMES = ("file", "s3", "http", "https")


def _check_bbox(value: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    west, south, east, north = value
    if not (-180.0 <= west <= 180.0 and -180.0 <= east <= 180.0):
        raise ValueError(f"bbox longitudes must be in [-180, 180], got west={west}, east={east}")
    if not (-90.0 <= south <= 90.0 and -90.0 <= north <= 90.0):
        raise ValueError(f"bbox latitudes must be in [-90, 90], got south={south}, north={north}")
    if west >= east:
        raise ValueError(f"bbox west must be < east, got west={west}, east={east}")
    if south >= north:
        raise ValueError(f"bbox south must be < north, got south={south}, north={north}")
    return value


BBox = Annotated[tuple[float, float, float, float], AfterValidator(_check_bbox)]
"""(west, south, east, north) in degrees, WGS84."""


def _check_search_bbox(
    value: tuple[float, float, float, float],
) -> tuple[float, float, float, float]:
    west, south, east, north = value
    if west > east:  # crosses the antimeridian, as in STAC: check each side
        _check_bbox((west, south, 180.0, north))
        _check_bbox((-180.0, south, east, north))
        return value
    return _check_bbox(value)


SearchBBox = Annotated[tuple[float, float, float, float], AfterValidator(_check_search_bbox)]
"""A search area: like :data:`BBox`, but ``west > east`` means it crosses the antimeridian
(from ``west`` east to 180 and from -180 to ``east``), as STAC item-search reads it."""


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"datetime must carry a timezone (e.g. 'Z'), got {value.isoformat()}")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
"""A timezone-aware datetime, normalised to UTC."""


def _check_crs(value: str) -> str:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        CRS.from_user_input(value)
    except CRSError as exc:
        raise ValueError(
            f"crs {value!r} is not a CRS pyproj understands (try 'EPSG:4326')"
        ) from exc
    return value


CrsString = Annotated[str, AfterValidator(_check_crs)]
"""A CRS as 'EPSG:nnnn', WKT or PROJ string."""


def _check_href(value: str) -> str:
    if not value:
        raise ValueError("href must not be empty")
    if "\x00" in value:
        raise ValueError(f"href {value!r} contains a NUL byte")
    parsed = urlparse(value)
    scheme = parsed.scheme.lower()
    if scheme == "" and value.startswith("/"):
        return value
    if scheme not in ALLOWED_HREF_SCHEMES:
        allowed = ", ".join(ALLOWED_HREF_SCHEMES)
        raise ValueError(
            f"href {value!r} has scheme {scheme or '(none)'!r}; use an absolute path or one "
            f"of: {allowed}"
        )
    if scheme in ("http", "https", "s3") and not parsed.netloc:
        raise ValueError(f"href {value!r} has no host/bucket")
    if ".." in parsed.path.split("/"):
        raise ValueError(f"href {value!r} contains '..'")
    return value


Href = Annotated[str, AfterValidator(_check_href)]
"""An absolute path or a file/s3/http(s) URL; no '..' segments."""


class TimeRange(BaseModel):
    """A closed time interval [start, end] in UTC."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: UtcDatetime
    end: UtcDatetime

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.start > self.end:
            raise ValueError(
                f"time range start {self.start.isoformat()} is after end {self.end.isoformat()}"
            )
        return self

    def contains(self, t: datetime) -> bool:
        """True if ``t`` lies inside the interval (inclusive)."""
        return self.start <= t <= self.end
