"""``timestamptz`` and ``numeric`` as whole microseconds, in Postgres' binary format.

A CDR's times and durations are whole microseconds (``CdrRecord``); the CDR writer's
connection sends them as they are, without a datetime or a Decimal per value (asyncpg's own
codecs want those, and making them costs more than the rest of a row's encoding).

- ``timestamptz``: an int64 of microseconds since 2000-01-01 00:00 UTC;
- ``numeric``: base-10000 digits with a weight, a sign and a display scale. A duration under
  10^8 seconds (``numeric(14, 6)``) is four digits: two before the point, two after.
"""

from __future__ import annotations

import struct

import asyncpg

POSTGRES_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 UTC, in microseconds since 1970
_INT64 = struct.Struct("!q")
_NUMERIC_HEADER = struct.Struct("!hhHh")  # digits, weight, sign, display scale
_FOUR_DIGITS = struct.Struct("!hhHhhhhh")
_NUMERIC_POSITIVE = 0x0000
_NUMERIC_NEGATIVE = 0x4000
_MICRO_SCALE = 6
_MAX_SECONDS = 10**8


def encode_time(us: int) -> bytes:
    """Microseconds since 1970 as a binary ``timestamptz``."""
    return _INT64.pack(us - POSTGRES_EPOCH_US)


def decode_time(data: bytes) -> int:
    return int(_INT64.unpack(data)[0]) + POSTGRES_EPOCH_US


def encode_seconds(us: int) -> bytes:
    """A whole number of microseconds, 0 to under 10^14, as a binary ``numeric`` of seconds
    with six decimals."""
    seconds, fraction = divmod(us, 1_000_000)
    if us < 0 or seconds >= _MAX_SECONDS:
        raise ValueError(f"{us} microseconds is outside 0 to 10^8 seconds")
    high, low = divmod(seconds, 10_000)
    return _FOUR_DIGITS.pack(
        4, 1, _NUMERIC_POSITIVE, _MICRO_SCALE, high, low, fraction // 100, fraction % 100 * 100
    )


def decode_seconds(data: bytes) -> int:
    """A binary ``numeric`` as whole microseconds; ValueError when it is not one (NaN, an
    infinity, or finer than a microsecond)."""
    count, weight, sign, _ = _NUMERIC_HEADER.unpack_from(data)
    if sign not in (_NUMERIC_POSITIVE, _NUMERIC_NEGATIVE):
        raise ValueError("not a finite number")
    digits = struct.unpack_from(f"!{count}h", data, _NUMERIC_HEADER.size)
    # digit i is worth 10000^(weight - i) seconds, 10^(4 * (weight - i) + 6) microseconds
    scaled = 0
    for position, digit in enumerate(digits):
        exponent = 4 * (weight - position) + _MICRO_SCALE
        if exponent >= 0:
            scaled += digit * 10**exponent
        elif digit % 10**-exponent:
            raise ValueError("finer than a microsecond")
        else:
            scaled += digit // 10**-exponent
    return -scaled if sign == _NUMERIC_NEGATIVE else scaled


async def install(connection: asyncpg.Connection) -> None:
    """Make this connection send and receive ``timestamptz`` and ``numeric`` as microseconds."""
    await connection.set_type_codec(
        "timestamptz",
        schema="pg_catalog",
        encoder=encode_time,
        decoder=decode_time,
        format="binary",
    )
    await connection.set_type_codec(
        "numeric",
        schema="pg_catalog",
        encoder=encode_seconds,
        decoder=decode_seconds,
        format="binary",
    )
