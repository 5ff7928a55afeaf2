"""Python modules shipped by other packages: the ``gravitas.modules`` entry-point group.

An entry point names a :class:`~gravitas.agents.modules.model.Module` object (or a
function returning one) whose ``target`` is ``package.module:function``::

    [project.entry-points."gravitas.modules"]
    my-downscaler = "my_pkg.gravitas_module:MODULE"
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

from gravitas.agents.modules.context import ModuleFunction
from gravitas.agents.modules.errors import ModuleError
from gravitas.agents.modules.model import Module

GROUP = "gravitas.modules"
log = logging.getLogger("gravitas.modules")


def discovered_modules() -> list[Module]:
    """Every module an installed package declares; a broken one is logged and skipped."""
    found: list[Module] = []
    for ep in entry_points(group=GROUP):
        try:
            obj = ep.load()
            module = obj() if callable(obj) and not isinstance(obj, Module) else obj
            if not isinstance(module, Module):
                raise ModuleError(
                    f"entry point {ep.name!r} gives {type(module).__name__}, not a gravitas Module"
                )
            if module.kind != "python":
                raise ModuleError(f"entry point {ep.name!r}: only python modules may be added")
            dist = ep.dist
            prov = {"source": f"entry point {ep.value}"}
            if dist is not None:
                prov["package"] = f"{dist.metadata['Name']}=={dist.version}"
            found.append(module.model_copy(update={"provenance": {**module.provenance, **prov}}))
        except Exception as exc:  # a third-party package must not break the node
            log.warning("skipping module entry point %s: %s", ep.name, exc)
    return found


def load_function(target: str) -> ModuleFunction:
    """The function ``package.module:function`` of a python module."""
    mod_name, sep, attr = target.partition(":")
    if not sep:
        raise ModuleError(f"python module target {target!r} must be package.module:function")
    fn = getattr(importlib.import_module(mod_name), attr, None)
    if not callable(fn):
        raise ModuleError(f"python module target {target!r} is not a function")
    return fn  # type: ignore[no-any-return]
