"""Rate decks' CSV: every line validated, all or nothing; corrections that only lower."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graam_pbx.billing.decks import (
    COLUMNS,
    MAX_REPORTED,
    DeckInvalid,
    RateRow,
    chosen_rate,
    correction_problems,
    decode_rate_cursor,
    encode_rate_cursor,
    parse_deck,
)
from graam_pbx.errors import Invalid

HEADER = ",".join(COLUMNS)


def deck(*lines: str) -> str:
    return "\n".join([HEADER, *lines]) + "\n"


def lines_of(err: pytest.ExceptionInfo[DeckInvalid]) -> dict[int, str]:
    return {e["line"]: e["reason"] for e in err.value.details["errors"]}


def test_a_valid_deck_is_read_whole() -> None:
    rows = parse_deck(
        deck(
            "33,FR,,,0.010000,0",
            "336,FR,,mobile,0.05,",
            "447,GB,FR,mobile,0.080000,0.010000",
            "1,US,,,0.01,0",
            "8816,ZZ,,,1.5,0",
        )
    )
    assert [(r.line, r.key) for r in rows] == [
        (2, ("33", "", "")),
        (3, ("336", "", "mobile")),
        (4, ("447", "FR", "mobile")),
        (5, ("1", "", "")),
        (6, ("8816", "", "")),
    ]
    assert rows[1].price_per_minute == Decimal("0.05")
    assert rows[1].connect_fee == Decimal(0)  # an empty connect fee is none
    assert rows[2].connect_fee == Decimal("0.010000")
    assert rows[4].destination_country == "ZZ"


def test_columns_in_any_order_a_bom_and_blank_lines() -> None:
    text = (
        "\ufeffprice_per_minute,prefix,connect_fee,number_type,origin_country,"
        "destination_country\r\n\r\n0.02,49,0,,,DE\r\n"
    )
    (row,) = parse_deck(text)
    assert (row.line, row.prefix, row.destination_country) == (3, "49", "DE")
    assert row.price_per_minute == Decimal("0.02")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("+33,FR,,,0.01,0", "prefix"),
        ("33a,FR,,,0.01,0", "prefix"),
        (",FR,,,0.01,0", "prefix"),
        ("1234567890123456,US,,,0.01,0", "prefix"),
        ("33,XX,,,0.01,0", "destination_country"),
        ("33,fr,,,0.01,0", "destination_country"),
        ("33,GB,,,0.01,0", "not in GB's country code +44"),
        ("3,FR,,,0.01,0", "not in FR's country code +33"),
        ("33,ZZ,,,0.01,0", "non-geographic"),
        ("33,FR,XX,,0.01,0", "origin_country"),
        ("33,FR,,landline,0.01,0", "number_type"),
        ("33,FR,,national,0.01,0", "number_type"),
        ("33,FR,,,-0.01,0", "price_per_minute"),
        ("33,FR,,,0.0000001,0", "price_per_minute"),
        ("33,FR,,,1e-3,0", "price_per_minute"),
        ("33,FR,,,NaN,0", "price_per_minute"),
        ("33,FR,,,,0", "price_per_minute"),
        ("33,FR,,,123456789,0", "price_per_minute"),
        ("33,FR,,,0.01,-1", "connect_fee"),
        ("33,FR,,,0.01,0.1234567", "connect_fee"),
        ("33,FR,,,0.01", "fields"),
        ("33,FR,,,0.01,0,extra", "fields"),
    ],
)
def test_a_bad_line_is_named_with_its_reason(line: str, reason: str) -> None:
    with pytest.raises(DeckInvalid) as err:
        parse_deck(deck("32,BE,,,0.01,0", line))
    assert err.value.status_code == 422
    found = lines_of(err)
    assert list(found) == [3]
    assert reason in found[3]
    assert err.value.details["errors"][0]["field"] == "body.line.3"


def test_every_known_number_type_is_taken() -> None:
    types = [
        "geographic",
        "mobile",
        "toll_free",
        "shared_cost",
        "premium_rate",
        "voip",
        "personal",
        "uan",
        "pager",
        "voicemail",
        "unknown",
    ]
    rows = parse_deck(deck(*(f"33,FR,,{kind},0.01,0" for kind in types)))
    assert [row.number_type for row in rows] == types


def test_duplicates_and_every_bad_line_are_reported() -> None:
    with pytest.raises(DeckInvalid) as err:
        parse_deck(
            deck(
                "33,FR,,,0.01,0",
                "33,FR,,,0.02,0",  # the same key as line 2
                "33,FR,DE,,0.02,0",  # another origin: a different key
                "x,FR,,,0.01,0",
                "33,FR,DE,,0.03,0",  # the same key as line 4
            )
        )
    found = lines_of(err)
    assert sorted(found) == [3, 5, 6]
    assert "line 2" in found[3]
    assert "line 4" in found[6]
    assert err.value.details["error_count"] == 3


def test_many_bad_lines_are_counted_and_the_first_listed() -> None:
    with pytest.raises(DeckInvalid) as err:
        parse_deck(deck(*(f"x{i},FR,,,0.01,0" for i in range(MAX_REPORTED + 50))))
    assert len(err.value.details["errors"]) == MAX_REPORTED
    assert err.value.details["error_count"] == MAX_REPORTED + 50


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "prefix,destination_country,price_per_minute\n33,FR,0.01\n",
        HEADER + ",more\n",
        HEADER.replace("prefix", "destination_country") + "\n",
    ],
)
def test_a_missing_or_wrong_header_is_refused(text: str) -> None:
    with pytest.raises(DeckInvalid) as err:
        parse_deck(text)
    assert "header" in next(iter(lines_of(err).values()))


def test_broken_csv_is_refused() -> None:
    with pytest.raises(DeckInvalid) as err:
        parse_deck(deck('33,FR,,,"0.01', "34,ES,,,0.01,0"))
    assert "not CSV" in " ".join(lines_of(err).values())


def test_tens_of_thousands_of_rows_parse() -> None:
    lines = [f"33{i:06d},FR,,,0.0{i % 10},0" for i in range(30_000)]
    assert len(parse_deck(deck(*lines))) == 30_000


@given(
    prefix=st.from_regex(r"33[0-9]{0,13}", fullmatch=True),
    units=st.integers(min_value=0, max_value=99_999_999),
    micros=st.integers(min_value=0, max_value=999_999),
)
def test_any_price_of_six_decimals_reads_exactly(prefix: str, units: int, micros: int) -> None:
    text = f"{units}.{micros:06d}"
    (row,) = parse_deck(deck(f"{prefix},FR,,,{text},{text}"))
    assert row.price_per_minute == Decimal(text) == row.connect_fee


def rate(prefix: str, price: str, *, origin: str = "", kind: str = "", fee: str = "0") -> RateRow:
    country = {"33": "FR", "44": "GB"}[prefix[:2]]
    return RateRow(1, prefix, country, origin, kind, Decimal(price), Decimal(fee))


def existing(*rates: RateRow) -> dict[tuple[str, str, str], RateRow]:
    return {r.key: r for r in rates}


def test_a_correction_may_lower_and_add_but_not_raise() -> None:
    deck_rates = existing(
        rate("33", "0.020"), rate("336", "0.100", kind="mobile"), rate("336", "0.080")
    )
    # Lowering an existing rate, adding a cheaper longer prefix under a dearer one.
    assert correction_problems(deck_rates, [rate("33", "0.010")]) == []
    assert correction_problems(deck_rates, [rate("3361", "0.070")]) == []
    assert correction_problems(deck_rates, [rate("3361", "0.090", kind="mobile")]) == []
    # A brand new destination: its calls were unrated, never free.
    assert correction_problems(deck_rates, [rate("44", "0.500")]) == []
    # Raising an existing price or fee.
    assert correction_problems(deck_rates, [rate("33", "0.021")])[0][0] == 1
    assert correction_problems(deck_rates, [rate("33", "0.020", fee="0.01")])
    # A longer prefix dearer than what its calls paid.
    assert correction_problems(deck_rates, [rate("3361", "0.085")])
    # A mobile-only rate where mobiles paid 0.100: fine at 0.095, refused at 0.11.
    assert correction_problems(deck_rates, [rate("33612", "0.095", kind="mobile")]) == []
    assert correction_problems(deck_rates, [rate("33612", "0.11", kind="mobile")])
    # An origin-specific rate at the same prefix takes the calls from that origin.
    assert correction_problems(deck_rates, [rate("33", "0.015", origin="DE")]) == []
    assert correction_problems(deck_rates, [rate("33", "0.025", origin="DE")])


def test_a_correction_never_changes_a_destination() -> None:
    deck_rates = existing(rate("33", "0.020"))
    moved = RateRow(7, "33", "GB", "", "", Decimal("0.01"), Decimal(0))
    ((line, reason),) = correction_problems(deck_rates, [moved])
    assert line == 7
    assert "destination" in reason


def test_an_any_rate_is_checked_against_every_kind_of_call_it_would_take() -> None:
    # Calls from DE paid 0.050, others 0.060; a longer prefix wins over an exact origin.
    deck_rates = existing(rate("33", "0.050", origin="DE"), rate("33", "0.060"))
    # A 336 "any origin" rate takes both DE calls (0.050 before) and others (0.060 before).
    assert correction_problems(deck_rates, [rate("336", "0.050")]) == []
    assert correction_problems(deck_rates, [rate("336", "0.055")])


def test_rate_cursors_round_trip() -> None:
    for key in [("33", "", ""), ("447", "FR", "mobile")]:
        assert decode_rate_cursor(encode_rate_cursor(key)) == key
    assert decode_rate_cursor(None) is None
    for bad in ["%%%", "eA", encode_rate_cursor(("x", "", ""))]:
        with pytest.raises(Invalid):
            decode_rate_cursor(bad)


@given(st.text(max_size=300))
def test_any_text_is_rows_or_a_refusal_naming_lines(text: str) -> None:
    try:
        rows = parse_deck(text)
    except DeckInvalid as err:
        assert all(e["line"] >= 1 for e in err.details["errors"])
    else:
        assert all(row.prefix.isdigit() for row in rows)


_PREFIXES = st.sampled_from(["33", "336", "3361", "33612", "337"])
_ORIGINS = st.sampled_from(["", "", "DE", "BE"])
_KINDS = st.sampled_from(["", "", "mobile", "geographic"])
_PRICES = st.integers(min_value=0, max_value=20).map(lambda n: Decimal(n) / 100)


def _rates(draw_rows: list[tuple[str, str, str, Decimal, Decimal]]) -> list[RateRow]:
    return [
        RateRow(line, prefix, "FR", origin, kind, price, fee)
        for line, (prefix, origin, kind, price, fee) in enumerate(draw_rows, start=2)
    ]


_ROWS = st.lists(
    st.tuples(_PREFIXES, _ORIGINS, _KINDS, _PRICES, _PRICES),
    max_size=8,
    unique_by=lambda row: row[:3],
)


def _paid(
    rates: dict[tuple[str, str, str], RateRow], number: str, origin: str, kind: str
) -> tuple[Decimal, Decimal] | None:
    covering = [r for r in rates.values() if number.startswith(r.prefix)]
    chosen = chosen_rate(covering, origin, kind)
    return None if chosen is None else (chosen.price_per_minute, chosen.connect_fee)


@given(
    before=_ROWS,
    correction=_ROWS,
    number=st.sampled_from(["3361234", "3361200", "3371", "3399", "336999"]),
    origin=st.sampled_from(["DE", "BE", "FR"]),
    kind=st.sampled_from(["mobile", "geographic", "toll_free"]),
)
def test_an_accepted_correction_never_makes_a_call_dearer(
    before: list[tuple[str, str, str, Decimal, Decimal]],
    correction: list[tuple[str, str, str, Decimal, Decimal]],
    number: str,
    origin: str,
    kind: str,
) -> None:
    deck_rates = {r.key: r for r in _rates(before)}
    rows = _rates(correction)
    if correction_problems(deck_rates, rows):
        return
    after = {**deck_rates, **{r.key: r for r in rows}}
    old = _paid(deck_rates, number, origin, kind)
    new = _paid(after, number, origin, kind)
    if old is not None:
        assert new is not None
        assert new[0] <= old[0] and new[1] <= old[1]
