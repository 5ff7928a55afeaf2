"""Errors of the module registry."""

from __future__ import annotations

from gravitas.schemas.errors import InputError, NotFoundError


class ModuleError(InputError):
    """A module definition that is not valid (name, version, schemas)."""


class UnknownModuleError(NotFoundError):
    """A module name or version the registry does not hold."""


class LifecycleError(InputError):
    """A lifecycle change that is not allowed (e.g. publishing a deprecated version)."""
