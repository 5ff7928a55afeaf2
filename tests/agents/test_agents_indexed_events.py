"""Ingest announces one BlocksIndexed per overview pyramid, not per block family."""

from __future__ import annotations

from gravitas.agents.ingest import indexed_events, partition_key
from gravitas.storage.pixels.index import FamilyWrite

LEVEL, TS = 21, 1_200_000_000  # top level 13: 8 levels of 2 bits above the blocks


def test_families_under_one_top_ancestor_travel_together() -> None:
    far = 1 << (2 * 8)  # the first morton under the next top-level ancestor
    families = [
        FamilyWrite("ls7_b3", LEVEL, TS, [0, 1, 2, 3], 100),
        FamilyWrite("ls7_b3", LEVEL, TS, [4, 6], 20),  # same pyramid, another parent
        FamilyWrite("ls7_b3", LEVEL, TS, [far], 5),  # another pyramid
        FamilyWrite("ls7_b4", LEVEL, TS, [0], 7),  # another layer
    ]
    events = indexed_events("scene-1", families)
    by_key = {e.partition_key: e for e in events}
    assert len(events) == 3
    first = by_key[partition_key("ls7_b3", LEVEL, TS, 0)]
    assert first.mortons == [0, 1, 2, 3, 4, 6] and first.valid_pixels == 120
    assert by_key[partition_key("ls7_b3", LEVEL, TS, far)].mortons == [far]
    assert by_key[partition_key("ls7_b4", LEVEL, TS, 0)].valid_pixels == 7
    assert all(e.scene_id == "scene-1" and e.level == LEVEL for e in events)
