"""The request in docs/datacube.md is a valid DatacubeRequested, and the doc lists every
field of the request and of a modality."""

from __future__ import annotations

import json
import re
from pathlib import Path

from gravitas.schemas.events import DatacubeRequested, Modality

DOC = Path(__file__).resolve().parents[2] / "docs" / "datacube.md"


def test_doc_example_validates_and_documents_every_field() -> None:
    text = DOC.read_text()
    block = re.search(r"```json\n(.*?)```", text, re.S)
    assert block is not None
    req = DatacubeRequested.model_validate(json.loads(block.group(1)))
    assert req.modalities[0].where == {"gravitas:scene_id": {"not in": ["LE70350322008118EDC00"]}}
    documented = set(re.findall(r"`([a-z_]+)`", text))
    envelope = {"event_id", "occurred_at", "node_id", "schema_version", "type", "request_id",
                "routed_from"}  # fmt: skip
    missing = set(DatacubeRequested.model_fields) - documented - envelope
    assert not missing, f"fields not in docs/datacube.md: {sorted(missing)}"
    assert not set(Modality.model_fields) - documented
