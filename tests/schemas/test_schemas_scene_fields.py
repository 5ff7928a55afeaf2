"""SceneAnnounced's reading fields refuse hostile values with a message naming them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gravitas.schemas.events import SceneAnnounced

BASE = {"scene_id": "s1", "collection": "c", "hrefs": ["/a_b3.tif", "/a_b4.tif"]}


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"band_names": ["b3"]}, "1 names for 2 hrefs"),
        ({"band_names": ["b3", "../../etc"]}, "'../../etc'"),
        ({"band_names": ["b3", "B3"]}, "repeat a band"),
        ({"band_nodata": [0.0]}, "1 values for 2 hrefs"),
        ({"nodata": float("inf")}, "finite"),
        ({"mask_convention": "drop table"}, "drop table"),
    ],
)
def test_hostile_reading_fields_are_refused(fields: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError) as err:
        SceneAnnounced.model_validate({**BASE, **fields})
    assert words in str(err.value)


def test_reading_fields_round_trip() -> None:
    ev = SceneAnnounced.model_validate(
        {**BASE, "band_names": ["red", "nir08"], "band_nodata": [0, None], "nodata": float("nan"),
         "mask_href": "/a_fmask.tif", "mask_convention": "qa_pixel"}
    )  # fmt: skip
    again = SceneAnnounced.model_validate_json(ev.model_dump_json())
    assert again.band_names == ["red", "nir08"] and again.band_nodata == [0.0, None]
    assert again.mask_convention == "qa_pixel"
