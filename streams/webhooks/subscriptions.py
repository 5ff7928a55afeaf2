"""Outbound subscriptions: which events of a topic go to which URL.

A filter is a list of clauses, all of which must hold for an event (its JSON fields):

- ``request_id=a,b`` — the field equals one of the values (any dotted field path);
- ``bbox=w,s,e,n`` — the event's ``bbox`` (or its GeoJSON ``geometry``) intersects it;
- ``properties.ppm_m>=500`` (also ``>``, ``<=``, ``<``) — a numeric threshold.

The target URL passes the node's URL policy (:mod:`gravitas.storage.hrefs`): http(s)
only, and a host resolving to a loopback, private, link-local or otherwise non-public
address only when an entry of ``GRAVITAS_ALLOWED_URL_PREFIXES`` admits the URL and
names that address.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gravitas.schemas.errors import InputError
from gravitas.schemas.settings import Settings
from gravitas.storage.hrefs import HrefPolicy, HrefRefusedError, parse_href
from gravitas.storage.hrefs.addresses import explicitly_allowed, kind, resolve

_CLAUSE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_:.\-]{0,99})\s*(>=|<=|>|<|=)\s*(.+?)\s*$")


class Clause(BaseModel):
    """One condition of a filter."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    op: Literal["in", "bbox", ">=", "<=", ">", "<"]
    values: tuple[str, ...] = ()
    number: float | None = None
    box: tuple[float, float, float, float] | None = None


class Subscription(BaseModel):
    """One subscription (the value of its record on the subscriptions topic)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=lambda: f"sub_{uuid.uuid4().hex}")
    topic: str
    url: str
    filters: tuple[Clause, ...] = ()
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    active: bool = True
    disabled_reason: str | None = None
    deleted: bool = False
    format: Literal["json", "cloudevents"] = "json"
    """``json``: the event's JSON as the body; ``cloudevents``: a CloudEvent 1.0."""
    content_mode: Literal["binary", "structured"] = "binary"
    """The CloudEvents HTTP content mode (``format: cloudevents`` only)."""


def parse_clause(text: str) -> Clause:
    """A clause from ``field=v1,v2``, ``bbox=w,s,e,n`` or ``field>=number``."""
    m = _CLAUSE.match(text)
    if m is None:
        raise InputError(f"filter {text[:80]!r} is not FIELD=V1,V2, bbox=W,S,E,N or FIELD>=NUMBER")
    field, op, raw = m.groups()
    if field == "bbox":
        if op != "=":
            raise InputError(f"filter {text!r}: use bbox=W,S,E,N")
        parts = raw.split(",")
        try:
            w, s, e, n = (float(p) for p in parts)
        except ValueError:
            raise InputError(f"filter {text!r}: bbox needs 4 numbers W,S,E,N") from None
        if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
            raise InputError(f"filter {text!r}: bbox {raw} is not W<=E in [-180,180], S<=N")
        return Clause(field="bbox", op="bbox", box=(w, s, e, n))
    if op == "=":
        values = tuple(v.strip() for v in raw.split(",") if v.strip())
        if not values:
            raise InputError(f"filter {text!r} names no value")
        return Clause(field=field, op="in", values=values)
    try:
        number = float(raw)
    except ValueError:
        raise InputError(f"filter {text!r}: {raw!r} is not a number") from None
    return Clause(field=field, op=op, number=number)  # type: ignore[arg-type]


def _get(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def matches(clauses: tuple[Clause, ...], event: dict[str, Any]) -> bool:
    """True if ``event`` (decoded JSON) satisfies every clause."""
    for c in clauses:
        value = _get(event, c.field)
        if c.op == "in":
            if value is None or str(value) not in c.values:
                return False
        elif c.op == "bbox":
            assert c.box is not None
            box = _event_box(event)
            if box is None:
                return False
            w, s, e, n = box
            if e < c.box[0] or w > c.box[2] or n < c.box[1] or s > c.box[3]:
                return False
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return False
            assert c.number is not None
            ok = {
                ">=": value >= c.number,
                "<=": value <= c.number,
                ">": value > c.number,
                "<": value < c.number,
            }[c.op]
            if not ok:
                return False
    return True


def _points(coords: Any) -> list[tuple[float, float]]:
    if not isinstance(coords, list | tuple):
        return []
    if len(coords) >= 2 and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in coords[:2]
    ):
        return [(float(coords[0]), float(coords[1]))]
    return [p for c in coords for p in _points(c)]


def _event_box(event: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """The event's ``bbox`` (2D or 3D), else the bounds of its GeoJSON ``geometry``."""
    value = event.get("bbox")
    if isinstance(value, list | tuple) and len(value) in (4, 6):
        try:
            half = len(value) // 2
            return (float(value[0]), float(value[1]), float(value[half]), float(value[half + 1]))
        except (TypeError, ValueError):
            return None
    geometry = event.get("geometry")
    if isinstance(geometry, dict):
        points = _points(geometry.get("coordinates"))
        if points:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            return (min(xs), min(ys), max(xs), max(ys))
    return None


def check_target(settings: Settings, url: str) -> str:
    """Admit a delivery URL under the href URL policy, or raise :class:`InputError`."""
    try:
        parsed = parse_href(url)
        if parsed.scheme not in ("http", "https"):
            raise HrefRefusedError(url, "a webhook target must be an http(s) URL")
        policy = HrefPolicy.from_settings(settings)
        try:
            prefix = policy.url_prefix(parsed)
        except HrefRefusedError:
            prefix = None
        for addr in resolve(parsed):
            why = kind(addr)
            if why is not None and not (prefix is not None and explicitly_allowed(addr, prefix)):
                raise HrefRefusedError(
                    url,
                    f"host {parsed.host!r} is a {why} address ({addr}); only an entry of "
                    "GRAVITAS_ALLOWED_URL_PREFIXES naming that address admits it",
                )
    except HrefRefusedError as exc:
        raise InputError(f"subscription URL refused: {exc}") from None
    return url
