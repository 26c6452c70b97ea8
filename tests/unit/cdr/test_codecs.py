"""Microseconds to Postgres' binary timestamptz and numeric, and back."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graam_pbx.cdr import codecs
from graam_pbx.cdr.parse import EARLIEST_US, LATEST_US, MAX_SECONDS_US

durations = st.integers(min_value=0, max_value=MAX_SECONDS_US - 1)


@given(durations)
def test_seconds_read_back_as_the_same_microseconds(us: int) -> None:
    assert codecs.decode_seconds(codecs.encode_seconds(us)) == us


@given(st.integers(min_value=EARLIEST_US, max_value=LATEST_US))
def test_times_read_back_as_the_same_microseconds(us: int) -> None:
    assert codecs.decode_time(codecs.encode_time(us)) == us


def test_seconds_are_four_base_10000_digits_with_six_decimals() -> None:
    # 12345678.901234 s: 1234|5678 . 9012|3400
    data = codecs.encode_seconds(12_345_678_901_234)
    assert struct.unpack("!8h", data) == (4, 1, 0, 6, 1234, 5678, 9012, 3400)


def test_the_start_of_postgres_time_is_zero() -> None:
    assert codecs.encode_time(codecs.POSTGRES_EPOCH_US) == bytes(8)


@pytest.mark.parametrize("us", [-1, MAX_SECONDS_US])
def test_seconds_outside_the_column_are_refused(us: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        codecs.encode_seconds(us)


def test_a_numeric_that_is_not_whole_microseconds_is_refused() -> None:
    nan = struct.pack("!hhHh", 0, 0, 0xC000, 0)
    with pytest.raises(ValueError, match="finite"):
        codecs.decode_seconds(nan)
    # 0.0000001 s: the digit 10 at weight -2 (units of 10^-8 s)
    finer = struct.pack("!hhHhh", 1, -2, 0, 7, 10)
    with pytest.raises(ValueError, match="finer"):
        codecs.decode_seconds(finer)


def test_negative_and_fractional_numerics_decode() -> None:
    # -1.5 s: digits 1 | 5000, weight 0, negative
    minus = struct.pack("!hhHhhh", 2, 0, 0x4000, 1, 1, 5000)
    assert codecs.decode_seconds(minus) == -1_500_000
