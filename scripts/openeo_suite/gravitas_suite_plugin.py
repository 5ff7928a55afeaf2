"""pytest plugin loaded into openeo-test-suite 0.2.2's own venv by
scripts/openeo-test-suite (``-p gravitas_suite_plugin``); never imported by gravitas.

It adapts the suite to an offline run against a gravitas node, without touching what
the suite checks:

- STAC JSON schemas: the suite's collection tests validate with stac-validator, which
  downloads every schema. Its one fetch function (``stac_validator.utilities.
  fetch_and_parse_file``) is routed to the local copies in ``$GRAVITAS_STAC_SCHEMAS``
  (laid out ``<host>/<path>``); a URL without a local copy fails at once, naming it,
  instead of waiting on a network this machine does not have. jsonschema's own remote
  ``$ref`` retrieval is routed to the same folder.
- Request bodies of the general compliance tests: the suite's examples are not in its
  wheel; ``$GRAVITAS_SUITE_PAYLOADS`` names gravitas's own (graphs on the sample data).
- Process tests with NaN or infinity in their arguments or expected result cannot travel
  over HTTP JSON (the suite's own http runner says so by failing them): they are skipped
  with that reason.
- Authentication: the suite's process tests (http runner) and its general compliance
  fixtures call ``Connection.authenticate_oidc()`` whatever ``OPENEO_AUTH_METHOD`` says.
  With ``OPENEO_AUTH_METHOD=basic`` this plugin makes that call log in with HTTP Basic
  (``OPENEO_AUTH_BASIC_USERNAME`` / ``OPENEO_AUTH_BASIC_PASSWORD``) at
  ``/credentials/basic``, the node's real login; the bearer token it answers is used for
  every authenticated request, exactly as an OIDC token would be.
"""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _schemas_root() -> Path:
    root = os.environ.get("GRAVITAS_STAC_SCHEMAS", "")
    if not root or not (Path(root) / "schemas.stacspec.org").is_dir():
        raise RuntimeError(
            f"GRAVITAS_STAC_SCHEMAS={root!r} does not hold the offline STAC schemas "
            "(schemas.stacspec.org/...); point it at the stac-schemas folder"
        )
    return Path(root)


@lru_cache(maxsize=256)
def _local_schema(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    local = _schemas_root() / (parts.hostname or "") / parts.path.lstrip("/")
    if not local.is_file():
        raise ValueError(f"offline: no local copy of {url} (looked for {local})")
    data: dict[str, Any] = json.loads(local.read_text())
    return data


def _route_stac_validator() -> None:
    import stac_validator.utilities as utilities
    import stac_validator.validate as validate

    original = utilities.fetch_and_parse_file

    def fetch_and_parse_file(input_path: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        parts = urlsplit(str(input_path))
        if parts.scheme in ("http", "https") and parts.hostname not in LOCAL_HOSTS:
            return _local_schema(str(input_path))
        result: dict[str, Any] = original(input_path, *args, **kwargs)
        return result

    utilities.fetch_and_parse_file = fetch_and_parse_file
    validate.fetch_and_parse_file = fetch_and_parse_file
    utilities.fetch_and_parse_schema.cache_clear()


def _route_jsonschema_refs() -> None:
    """jsonschema retrieves an unknown remote ``$ref`` itself (urlopen, in its default
    registry): serve those from the same folder."""
    import jsonschema.validators as validators
    import referencing
    from referencing.jsonschema import DRAFT7

    def retrieve(uri: str) -> referencing.Resource[Any]:
        return referencing.Resource.from_contents(_local_schema(uri), default_specification=DRAFT7)

    # the default registry is a frozen attrs object shared by every validator class
    object.__setattr__(validators._REMOTE_WARNING_REGISTRY, "_retrieve", retrieve)


def _route_oidc_to_basic() -> None:
    from openeo.rest.connection import Connection

    user = os.environ.get("OPENEO_AUTH_BASIC_USERNAME")
    password = os.environ.get("OPENEO_AUTH_BASIC_PASSWORD")
    if not user or not password:
        raise RuntimeError(
            "OPENEO_AUTH_METHOD=basic needs OPENEO_AUTH_BASIC_USERNAME and "
            "OPENEO_AUTH_BASIC_PASSWORD"
        )

    def authenticate_oidc(self: Connection, *args: Any, **kwargs: Any) -> Connection:
        return self.authenticate_basic(username=user, password=password)

    Connection.authenticate_oidc = authenticate_oidc  # type: ignore[method-assign]


def _route_payload_examples() -> None:
    """The compliance tests' request bodies (not in the suite's wheel): gravitas's own, in
    ``$GRAVITAS_SUITE_PAYLOADS`` (an absolute path: the suite joins relative ones twice)."""
    folder = os.environ.get("GRAVITAS_SUITE_PAYLOADS")
    if not folder:
        return
    import openeo_test_suite.lib.compliance_util as compliance_util

    path = Path(folder).resolve()
    compliance_util.get_examples_path = lambda: path


def _has_non_json_number(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value) or math.isinf(value)
    if isinstance(value, dict):
        return any(_has_non_json_number(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_json_number(v) for v in value)
    return False


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Process tests whose arguments or expected result hold NaN or infinity cannot be
    sent or answered over HTTP JSON (the suite's http runner fails them itself with
    "HTTP JSON APIs don't support NaN values"): skip them, saying so."""
    import pytest

    if config.getoption("--runner") != "http":
        return
    for item in items:
        example = getattr(getattr(item, "callspec", None), "params", {}).get("example")
        if not isinstance(example, dict):
            continue
        if _has_non_json_number(example.get("arguments")) or _has_non_json_number(
            example.get("returns")
        ):
            item.add_marker(
                pytest.mark.skip(reason="NaN/infinity in arguments or result: not JSON")
            )


def pytest_configure(config: Any) -> None:
    _route_payload_examples()
    _route_stac_validator()
    _route_jsonschema_refs()
    if os.environ.get("OPENEO_AUTH_METHOD") == "basic":
        _route_oidc_to_basic()
