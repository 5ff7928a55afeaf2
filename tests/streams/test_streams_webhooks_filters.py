"""Subscription filters and target URLs: parsed, matched against event JSON, and every
bad filter or forbidden URL refused with a message naming it."""

from __future__ import annotations

import pytest
import shapely.geometry

from gravitas.schemas.errors import InputError
from gravitas.schemas.settings import load_settings
from gravitas.streams.webhooks.subscriptions import check_target, matches, parse_clause

PLUME = {
    "type": "methane.plume",
    "request_id": "r-17",
    "max_ppm_m": 812.5,
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[-103.2, 31.9], [-102.9, 31.9], [-102.9, 32.1], [-103.2, 31.9]]],
    },
}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["request_id=r-17,r-18"], True),
        (["request_id=r-1"], False),
        (["max_ppm_m>=500"], True),
        (["max_ppm_m>1000"], False),
        (["max_ppm_m<=812.5", "max_ppm_m<900"], True),
        (["bbox=-105,31,-101,33"], True),
        (["bbox=10,45,11,46"], False),
        (["bbox=-105,31,-101,33", "max_ppm_m>=900"], False),  # all must hold
        (["missing.field>=1"], False),
        (["type=methane.plume"], True),
    ],
)
def test_filters_match_like_an_independent_check(filters: list[str], expected: bool) -> None:
    clauses = tuple(parse_clause(f) for f in filters)
    assert matches(clauses, PLUME) is expected
    # the bbox clauses agree with shapely's intersection of the plume and the box
    for f in filters:
        if f.startswith("bbox="):
            w, s, e, n = (float(v) for v in f.removeprefix("bbox=").split(","))
            shape = shapely.geometry.shape(PLUME["geometry"])  # type: ignore[arg-type]
            assert shape.intersects(shapely.geometry.box(w, s, e, n)) is matches(
                (parse_clause(f),), PLUME
            )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("ppm <<< 3", "ppm <<< 3"),
        ("bbox=1,2,3", "bbox=1,2,3"),
        ("bbox>=1,2,3,4", "bbox>=1,2,3,4"),
        ("bbox=10,0,5,1", "10,0,5,1"),
        ("max_ppm_m>=lots", "'lots'"),
        ("request_id=", "request_id="),
        ("; DROP TABLE x", "DROP TABLE"),
    ],
)
def test_bad_filters_are_named(text: str, named: str) -> None:
    with pytest.raises(InputError, match="filter") as err:
        parse_clause(text)
    assert named in str(err.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
        "ftp://example.org/x",
        "file:///etc/passwd",
    ],
)
def test_non_public_or_non_http_targets_are_refused(url: str, tmp_path: object) -> None:
    settings = load_settings(data_dir=f"{tmp_path}/n")
    with pytest.raises(InputError, match="subscription URL refused") as err:
        check_target(settings, url)
    assert url.split("//")[1].split("/")[0].strip("[]").split("]")[0][:8] in str(err.value)


def test_an_allow_listed_loopback_receiver_is_admitted(tmp_path: object) -> None:
    settings = load_settings(
        data_dir=f"{tmp_path}/n", allowed_url_prefixes=("http://127.0.0.1:8080/hooks/",)
    )
    assert (
        check_target(settings, "http://127.0.0.1:8080/hooks/a") == "http://127.0.0.1:8080/hooks/a"
    )
    with pytest.raises(InputError, match="loopback"):
        check_target(settings, "http://127.0.0.1:8081/hooks/a")  # another port
    assert check_target(settings, "https://93.184.215.14/hook")  # a public address
