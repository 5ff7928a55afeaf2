"""The modules a node knows: built-ins, installed entry points, and its registry."""

from __future__ import annotations

from pathlib import Path

from gravitas.agents.modules.builtin import builtin_modules
from gravitas.agents.modules.entrypoints import discovered_modules
from gravitas.agents.modules.model import Module
from gravitas.agents.modules.registry import ModuleCatalog, ModuleRegistry

REGISTRY_FILE = "modules.sqlite"


def local_modules() -> list[Module]:
    """Modules whose code is installed here (built-in and entry points)."""
    return [*builtin_modules(), *discovered_modules()]


def node_catalog(data_dir: Path) -> ModuleCatalog:
    """Local modules overlaid by the node's registry (published, deprecated changes)."""
    mods = local_modules()
    path = data_dir / REGISTRY_FILE
    if path.exists():
        reg = ModuleRegistry(path)
        try:
            mods.extend(reg.modules())
        finally:
            reg.close()
    return ModuleCatalog(mods)
