"""What a module is: ``name@version`` with its schemas, metadata and lifecycle."""

from __future__ import annotations

from typing import Any, Literal

import jsonschema
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gravitas.agents.modules.errors import ModuleError

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
Lifecycle = Literal["draft", "published", "deprecated"]
Kind = Literal["agent", "python"]
JSON_TYPES = ("string", "number", "integer", "boolean", "array", "object")


def parse_version(text: str) -> Version:
    """A semantic version (``1.2.0``), or :class:`ModuleError` naming the value."""
    try:
        return Version(text)
    except InvalidVersion:
        raise ModuleError(f"version {text!r} is not a semantic version such as 1.2.0") from None


def split_ref(ref: str) -> tuple[str, str]:
    """``name@version`` -> (name, version); :class:`ModuleError` if malformed."""
    name, sep, version = ref.partition("@")
    if not sep or not name or not version:
        raise ModuleError(f"module reference {ref!r} must be name@version, e.g. featurize@1.0.0")
    parse_version(version)
    return name, version


class Module(BaseModel):
    """A module definition (what the registry stores, signed by its owner)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    version: str
    description: str = Field(min_length=1, max_length=2000)
    author: str = Field(min_length=1, max_length=200)
    lifecycle: Lifecycle = "draft"
    kind: Kind
    target: str = Field(min_length=1, max_length=300)
    """``agent``: the request topic; ``python``: ``package.module:function``."""
    inputs: dict[str, Any]
    """JSON Schema (an object schema) of the step's inputs."""
    outputs: dict[str, Any]
    """JSON Schema (an object schema) of the step's outputs."""
    provenance: dict[str, str] = Field(default_factory=dict)
    """Where the module comes from (package and version, source, built-in)."""
    owner: str = "local"
    """The node that published it (only it may change it)."""

    @field_validator("version")
    @classmethod
    def _semver(cls, v: str) -> str:
        try:
            Version(v)
        except InvalidVersion:
            raise ValueError(f"{v!r} is not a semantic version such as 1.2.0") from None
        return v

    @field_validator("inputs", "outputs")
    @classmethod
    def _object_schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            jsonschema.Draft202012Validator.check_schema(v)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        if v.get("type") != "object":
            raise ValueError('must be an object schema ({"type": "object", "properties": ...})')
        for key, prop in v.get("properties", {}).items():
            t = prop.get("type") if isinstance(prop, dict) else None
            if t is not None and t not in JSON_TYPES:
                raise ValueError(f"property {key!r} has type {t!r}; use one of {JSON_TYPES}")
        return v

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    def input_type(self, key: str) -> str | None:
        """The JSON type of input ``key`` (None: untyped or unknown)."""
        prop = self.inputs.get("properties", {}).get(key)
        return prop.get("type") if isinstance(prop, dict) else None

    def output_type(self, key: str) -> str | None:
        """The JSON type of output ``key`` (None: untyped)."""
        prop = self.outputs.get("properties", {}).get(key)
        return prop.get("type") if isinstance(prop, dict) else None

    def has_output(self, key: str) -> bool:
        """True when the outputs schema declares ``key``."""
        return key in self.outputs.get("properties", {})

    def check_inputs(self, values: dict[str, Any]) -> None:
        """Validate concrete inputs against the schema; :class:`ModuleError` names the path."""
        errors = sorted(jsonschema.Draft202012Validator(self.inputs).iter_errors(values), key=str)
        if errors:
            e = errors[0]
            where = ".".join(str(p) for p in e.absolute_path) or "(inputs)"
            raise ModuleError(f"{self.ref} input {where}: {e.message}")


def schema(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """A small helper for an object JSON Schema."""
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    return out
