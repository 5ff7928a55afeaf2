"""Block key layout: round trips and byte order == numeric order (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gravitas.storage.blocks import BlockKeyError
from gravitas.storage.keys import (
    KEY_SIZE,
    decode_key,
    encode_key,
    key_range,
    layer_id,
    scan_ranges,
    time_bucket,
)

layers = st.integers(0, 2**64 - 1)
levels = st.integers(1, 29)
mortons = st.integers(0, 2**64 - 1)
times = st.integers(-(2**40), 2**40)  # +-35,000 years around 1970
fields = st.tuples(layers, levels, mortons, times)


@given(fields)
def test_round_trip(f: tuple[int, int, int, int]) -> None:
    key = encode_key(*f)
    assert len(key) == KEY_SIZE
    d = decode_key(key)
    assert (d.layer, d.level, d.morton, d.timestamp) == f
    assert d.bucket == f[3] // 86_400


@given(fields, fields)
def test_byte_order_is_numeric_order(
    a: tuple[int, int, int, int], b: tuple[int, int, int, int]
) -> None:
    def numeric(f: tuple[int, int, int, int]) -> tuple[int, ...]:
        return (f[0], f[1], time_bucket(f[3]), f[2], f[3])

    ka, kb = encode_key(*a), encode_key(*b)
    assert (ka < kb) == (numeric(a) < numeric(b))
    assert (ka == kb) == (a == b)


@given(
    layers, levels, times, st.integers(0, 10 * 86_400), mortons, st.integers(-86_400, 20 * 86_400)
)
def test_key_range_contains_exactly_the_window_days(
    layer: int, level: int, t0: int, span: int, morton: int, t: int
) -> None:
    lo, hi = key_range(layer, level, t0, t0 + span)
    key = encode_key(layer, level, morton, t0 + t)
    inside_days = time_bucket(t0) <= time_bucket(t0 + t) <= time_bucket(t0 + span)
    assert (lo <= key <= hi) == inside_days
    other = encode_key(layer ^ 1, level, morton, t0)
    assert not lo <= other <= hi


def test_layer_names_and_datetimes() -> None:
    assert layer_id("era5/t2m") == layer_id("era5/t2m") != layer_id("era5/t2m-mean")
    dt = datetime(1950, 1, 1, 6, tzinfo=UTC)
    key = encode_key("era5/t2m", 10, 5, dt)
    assert decode_key(key).timestamp == int(dt.timestamp())
    assert decode_key(key).bucket < 0
    assert encode_key("era5/t2m", 10, 5, datetime(1950, 1, 1, 6)) == key  # naive = UTC


@pytest.mark.parametrize(
    ("call", "word"),
    [
        (lambda: encode_key("", 10, 0, 0), "layer name"),
        (lambda: encode_key("../x", 10, 0, 0), "layer name"),
        (lambda: encode_key("a", 0, 0, 0), "level"),
        (lambda: encode_key("a", 10, -1, 0), "morton"),
        (lambda: encode_key("a", 10, 0, 1.5), "timestamp"),
        (lambda: decode_key(b"short"), "29 bytes"),
        (lambda: key_range("a", 10, 100_000, 0), "t1 must be >= t0"),
    ],
)
def test_bad_fields_name_the_value(call: object, word: str) -> None:
    with pytest.raises(Exception, match=word) as info:
        call()  # type: ignore[operator]
    assert isinstance(info.value, BlockKeyError) or "level" in word


def test_scan_ranges_are_sorted_disjoint_and_per_day() -> None:
    ranges = scan_ranges("a", 12, 0, 2 * 86_400, (3, 3, 9, 7))
    flat = [k for r in ranges for k in r]
    assert flat == sorted(flat)
    assert {decode_key(lo).bucket for lo, _ in ranges} == {0, 1, 2}
    assert len(scan_ranges("a", 12, 0, 0, (3, 3, 9, 7), max_ranges=2)) == 2
