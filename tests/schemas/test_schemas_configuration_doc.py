"""docs/configuration.md lists every setting of the Settings model with its variable and
its default (a setting added without a row here fails this test)."""

from __future__ import annotations

import re
from pathlib import Path

from gravitas.schemas.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
ROW = re.compile(r"^\| `(GRAVITAS_[A-Z0-9_]+)` \| ([^|]+) \|", re.MULTILINE)
OUTSIDE = {"GRAVITAS_CONFIG", "GRAVITAS_CACHE", "GRAVITAS_PG_BINDIR"}


def rows() -> dict[str, str]:
    return {m.group(1): m.group(2).strip() for m in ROW.finditer(DOC.read_text())}


def test_every_setting_has_a_row_and_no_row_names_an_unknown_variable() -> None:
    documented = set(rows())
    fields = {f"GRAVITAS_{name.upper()}" for name in Settings.model_fields}
    missing = fields - documented
    assert not missing, f"add rows for {sorted(missing)} to docs/configuration.md"
    unknown = documented - fields - OUTSIDE
    assert not unknown, f"docs/configuration.md documents unknown variables {sorted(unknown)}"


def test_documented_defaults_match_the_model() -> None:
    table = rows()
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, bool):
            expected = f"`{str(default).lower()}`"
        elif isinstance(default, int | float) or (isinstance(default, str) and default):
            expected = f"`{default}`"
        elif default == "":
            expected = "empty"
        else:
            continue  # computed defaults (data dir, group id, ...) are described in words
        assert table[f"GRAVITAS_{name.upper()}"] == expected, name
