"""Session fixtures shared by every test folder: the real services and sample data."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.kafka",
    "tests.fixtures.s3",
    "tests.fixtures.pgstac",
    "tests.fixtures.prometheus",
]
