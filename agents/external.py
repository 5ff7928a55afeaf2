"""External References stay external: a read indexes their pixels, never changes them.

The onboarding agent reads an External Reference in place when a request first needs
it and stages its blocks; the overview agent, once they are merged, notes the read in
:class:`~gravitas.storage.external_reads.ExternalReads` (keyed by item and version;
:mod:`gravitas.agents.pyramids`); the item keeps its registration (mode ``external``,
``gravitas:onboarded`` false, same version) and nothing enters the object store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gravitas.agents.hrefs import external_reads
from gravitas.agents.registration import MODE, VERSION
from gravitas.agents.services import NodeServices


def is_external(item: Mapping[str, Any]) -> bool:
    """True for an External Reference item."""
    return (item.get("properties") or {}).get(MODE) == "external"


def _key(item: Mapping[str, Any]) -> tuple[str, str, int]:
    props = item.get("properties") or {}
    return str(item["collection"]), str(item["id"]), int(props.get(VERSION, 1))


def already_read(services: NodeServices, item: Mapping[str, Any]) -> bool:
    """True if this version of an External Reference was indexed from its source here."""
    return is_external(item) and external_reads(services).read(*_key(item))


def note_read(services: NodeServices, item: Mapping[str, Any], hrefs: Sequence[str]) -> None:
    """Record that an External Reference's pixels were indexed from ``hrefs``."""
    external_reads(services).record(*_key(item), hrefs)
