"""The node's href policy as the agents apply it (see :mod:`gravitas.storage.hrefs`).

Checked twice: :func:`check_scene_hrefs` / :func:`check_hrefs` when an event arrives
(every href of every mode: data, mask, sidecars, STAC asset hrefs), and
:func:`readable` right before each read (settings may have changed; a host name may
resolve differently now). A refusal raises :class:`HrefRefusedError` before anything
is written, so the event is dead-lettered and nothing stored changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from gravitas.agents.services import NodeServices
from gravitas.schemas.events import SceneAnnounced
from gravitas.storage.external_reads import ExternalReads
from gravitas.storage.hrefs import CheckedHref, HrefPolicy, HrefRefusedError

__all__ = [
    "HrefRefusedError",
    "check_hrefs",
    "check_scene_hrefs",
    "external_reads",
    "href_policy",
    "readable",
    "readable_path",
]


def href_policy(services: NodeServices) -> HrefPolicy:
    """The policy of this node's current settings."""
    return HrefPolicy.from_settings(services.settings)


def check_hrefs(services: NodeServices, hrefs: Iterable[str]) -> None:
    """Refuse the first href the policy does not admit (addresses resolved and checked)."""
    policy = href_policy(services)
    for href in hrefs:
        policy.check(href)


def scene_hrefs(event: SceneAnnounced) -> list[str]:
    """Every href a scene announcement names: its data files and its mask."""
    return [*event.hrefs, *([event.mask_href] if event.mask_href else [])]


def check_scene_hrefs(services: NodeServices, event: SceneAnnounced) -> None:
    """At arrival: every href of a scene, whatever its mode."""
    check_hrefs(services, scene_hrefs(event))


def readable(services: NodeServices, href: str) -> CheckedHref:
    """Right before a read: admit ``href`` again (a local file must exist)."""
    return href_policy(services).check(href, must_exist=True)


def readable_path(services: NodeServices, href: str) -> Path:
    """The real path of a local href about to be read (URLs are refused here)."""
    checked = readable(services, href)
    if checked.path is None:
        raise HrefRefusedError(
            href, "this step reads local files only (register a URL with mode 'external')"
        )
    return checked.path


def external_reads(services: NodeServices) -> ExternalReads:
    """The record of External References indexed from their source on this node."""
    return ExternalReads(services.data_dir / "external_reads.sqlite")
