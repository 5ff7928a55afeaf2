"""The workflow templates that ship with gravitas (``agents/workflows/templates/``)."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import yaml

from gravitas.agents.workflows.errors import SpecError


def template_names() -> list[str]:
    """Names of the shipped templates."""
    root = files("gravitas.agents.workflows.templates")
    return sorted(p.name.removesuffix(".yaml") for p in root.iterdir() if p.name.endswith(".yaml"))


def template_text(name: str) -> str:
    """The YAML of template ``name``."""
    if name not in template_names():
        raise SpecError("name", f"unknown template {name!r}; templates: {template_names()}")
    return files("gravitas.agents.workflows.templates").joinpath(f"{name}.yaml").read_text()


def template_spec(name: str) -> dict[str, Any]:
    """Template ``name`` as a spec dict."""
    return yaml.safe_load(template_text(name))  # type: ignore[no-any-return]
