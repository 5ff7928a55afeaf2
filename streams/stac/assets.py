"""The asset route: object-store objects over HTTP with range requests.

``GET|HEAD /stac/assets/{key}`` answers with the object's bytes (``200``), one byte
range of them (``206`` with ``Content-Range``), or ``416`` for a range outside the
object, so GDAL's ``/vsicurl/``, fsspec and pystac read COGs, NetCDF and Zarr stores
in place. Only keys inside the node's object store are served: keys with ``..``,
absolute paths, backslashes, control characters or percent-encoded separators are
refused (``400``) before the store is asked, and only published keys
(:data:`~gravitas.storage.objects.public.PUBLISHED_PREFIXES`) are looked up: any other
key is a ``404`` whether or not the store holds it.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from gravitas.schemas.errors import UnsafePathError
from gravitas.storage.objects.base import ObjectStore
from gravitas.storage.objects.errors import ObjectNotFoundError, ObjectStoreError
from gravitas.storage.objects.keys import check_key
from gravitas.storage.objects.public import PUBLISHED_PREFIXES, is_published

__all__ = ["ByteRange", "RangeNotSatisfiableError", "assets_router", "media_type", "parse_range"]

CHUNK = 1 << 20
"""Bytes per read when streaming an object."""

_MEDIA = {
    ".tif": "image/tiff; application=geotiff",
    ".tiff": "image/tiff; application=geotiff",
    ".jp2": "image/jp2",
    ".nc": "application/netcdf",
    ".nc4": "application/netcdf",
    ".grib": "application/wmo-grib",
    ".grib2": "application/wmo-grib",
    ".geojson": "application/geo+json",
    ".json": "application/json",
    ".zarray": "application/json",
    ".zattrs": "application/json",
    ".zgroup": "application/json",
    ".zmetadata": "application/json",
    ".png": "image/png",
}
_ENCODED_SEPARATOR = re.compile(rb"%(2f|5c|2e|00)", re.IGNORECASE)
_RANGE = re.compile(r"^[ \t]*([0-9]{0,19})[ \t]*-[ \t]*([0-9]{0,19})[ \t]*$")
"""ASCII digits only, at most 19 a side: a longer number is no byte of any object (and
Python refuses to parse ints over 4300 digits, which must not become a 500)."""


class RangeNotSatisfiableError(ValueError):
    """A ``Range`` header that selects no bytes of the object."""


ByteRange = tuple[int, int]
"""First and last byte (inclusive)."""


def media_type(key: str) -> str:
    """The content type of an object, from its name."""
    name = key.rsplit("/", 1)[-1].lower()
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    if suffix in _MEDIA:
        return _MEDIA[suffix]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range a ``Range`` header asks for, or None to send everything
    (no header, another unit, or several ranges); RangeNotSatisfiableError when it
    selects nothing or is malformed."""
    if header is None or not header.strip():
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    m = _RANGE.match(spec)
    if m is None or (not m.group(1) and not m.group(2)):
        raise RangeNotSatisfiableError(f"Range {header!r} is not 'bytes=first-last'")
    first, last = m.group(1), m.group(2)
    if not first:  # a suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiableError(f"Range {header!r} selects no bytes of {size}")
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if end < start:
        raise RangeNotSatisfiableError(f"Range {header!r} ends before it starts")
    if start >= size:
        raise RangeNotSatisfiableError(f"Range {header!r} starts beyond the {size} bytes")
    return start, min(end, size - 1)


def _problem(
    status: int, code: str, description: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps({"code": code, "description": description}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _chunks(store: ObjectStore, key: str, start: int, length: int) -> Iterator[bytes]:
    offset, end = start, start + length
    while offset < end:
        data = store.get_bytes(key, offset, min(CHUNK, end - offset))
        if not data:
            return
        offset += len(data)
        yield data


def assets_router(store: ObjectStore, prefix: str = "/stac") -> APIRouter:
    """``GET|HEAD {prefix}/assets/{key}`` over ``store``."""
    router = APIRouter(prefix=prefix, tags=["stac"])

    @router.get("/assets/{key:path}")
    @router.head("/assets/{key:path}", include_in_schema=False)
    def asset(request: Request, key: str) -> Response:
        """One object of the node's object store; supports ``Range: bytes=a-b``."""
        raw = request.scope.get("raw_path") or b""
        if _ENCODED_SEPARATOR.search(raw):
            return _problem(
                400,
                "BadRequest",
                f"asset key {key!r} is percent-encoded with '/', '\\', '.' or NUL; "
                "use the key as the item's href gives it",
            )
        try:
            check_key(key)
            if not is_published(key):
                raise ObjectNotFoundError(key)
            size = store.size(key)
        except UnsafePathError as exc:
            return _problem(400, "BadRequest", f"asset key {key!r} is refused: {exc}")
        except ObjectNotFoundError:
            served = ", ".join(PUBLISHED_PREFIXES)
            return _problem(
                404, "NotFound", f"no asset {key!r} on this node (assets are keys under {served})"
            )
        except ObjectStoreError as exc:
            return _problem(
                503, "Unavailable", f"the object store cannot answer for {key!r}: {exc}"
            )
        headers = {"Accept-Ranges": "bytes"}
        try:
            wanted = parse_range(request.headers.get("range"), size)
        except RangeNotSatisfiableError as exc:
            return _problem(
                416, "RangeNotSatisfiable", str(exc), {"Content-Range": f"bytes */{size}"}
            )
        start, end = wanted if wanted is not None else (0, size - 1)
        length = max(0, end - start + 1)
        headers["Content-Length"] = str(length)
        status = 200
        if wanted is not None:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        kind = media_type(key)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=kind)
        return StreamingResponse(
            _chunks(store, key, start, length), status_code=status, headers=headers, media_type=kind
        )

    return router
