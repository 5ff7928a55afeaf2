"""Configuration of the inbound webhook sources (``GRAVITAS_WEBHOOK_SOURCES``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SOURCE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class WebhookSource(BaseModel):
    """One provider allowed to call ``POST /webhooks/{source}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    topics: tuple[str, ...] = Field(min_length=1)
    """Topics this source may publish to (each must also be an external topic)."""
    secret_file: Path | None = None
    """File holding the source's Standard Webhooks secret (``whsec_<base64>``, mode
    0600); default ``<data_dir>/webhooks/<source>.secret``, generated on first start."""
    collection: str | None = None
    """Collection of the scenes of STAC items that name none."""
    mode: Literal["direct", "reference", "lazy"] = "direct"
    """Data mode of the scenes announced from STAC items."""

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for topic in value:
            if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,99}", topic):
                raise ValueError(f"webhook source topic {topic!r} is not a topic name")
        return value
