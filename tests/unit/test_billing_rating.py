"""Rating's pure parts: classification, longest-prefix matching, the contract's vectors."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat

from graam_pbx.billing import money
from graam_pbx.billing.rating import (
    CompiledDeck,
    DeckRate,
    classify_destination,
    deck_in_force,
    digits_of,
    origin_country,
    parse_e164,
    price_call,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rate(
    prefix: str, price: str, origin: str = "", number_type: str = "", fee: str = "0"
) -> DeckRate:
    return DeckRate(prefix, origin, number_type, "FR", Decimal(price), Decimal(fee))


def test_classification_by_libphonenumber() -> None:
    assert classify_destination("+33142685300") == ("FR", "geographic")
    assert classify_destination("+33612345678") == ("FR", "mobile")
    assert classify_destination("+33800123456") == ("FR", "toll_free")
    assert classify_destination("+447912345678") == ("GB", "mobile")
    assert classify_destination("+442079460000") == ("GB", "geographic")
    assert classify_destination("+12125550123")[0] == "US"
    assert classify_destination("+12015550123") == ("US", "geographic")  # fixed line or mobile
    assert classify_destination("+33891234567") == ("FR", "premium_rate")
    assert classify_destination("+33810123456") == ("FR", "shared_cost")
    assert classify_destination("+33939123456") == ("FR", "voip")
    assert classify_destination("+447012345678") == ("GB", "personal")


def test_what_is_not_a_number_is_unknown() -> None:
    assert classify_destination("201") == ("ZZ", "unknown")
    assert classify_destination("+") == ("ZZ", "unknown")
    assert classify_destination("+999") == ("ZZ", "unknown")
    assert classify_destination("+80012345678") == ("ZZ", "toll_free")  # UIFN: no country
    assert classify_destination("+3314")[1] == "unknown"


def test_origin_is_the_caller_id_country_else_the_tenant() -> None:
    assert origin_country("+442079460000", "FR") == "GB"
    assert origin_country("201", "FR") == "FR"
    assert origin_country("", "BE") == "BE"
    assert origin_country(None, "BE") == "BE"
    assert origin_country("+999", "FR") == "FR"


def test_digits_only_of_e164() -> None:
    assert digits_of("+33142685300") == "33142685300"
    assert digits_of("33142685300") is None
    assert digits_of("+33 1 42") is None
    assert digits_of("+1234567890123456") is None
    assert digits_of("+") is None


def test_longest_prefix_then_origin_then_type() -> None:
    deck = CompiledDeck.compile(
        1,
        T0,
        [
            rate("33", "0.10"),
            rate("336", "0.20"),
            rate("336", "0.21", number_type="mobile"),
            rate("336", "0.22", origin="GB"),
            rate("336", "0.23", origin="GB", number_type="mobile"),
            rate("3361", "0.30", origin="DE"),
        ],
    )

    def price(digits: str, origin: str, number_type: str) -> Decimal | None:
        found = deck.match(digits, origin, number_type)
        return None if found is None else found.price_per_minute

    assert price("33142685300", "FR", "geographic") == Decimal("0.10")
    assert price("33612345678", "FR", "geographic") == Decimal("0.20")
    assert price("33612345678", "FR", "mobile") == Decimal("0.21")
    assert price("33612345678", "GB", "geographic") == Decimal("0.22")
    assert price("33612345678", "GB", "mobile") == Decimal("0.23")
    # Exact origin wins over exact type.
    assert price("33699999999", "GB", "mobile") == Decimal("0.23")
    # The longest prefix with a rate for this origin: 3361 is DE's only, FR falls back to 336.
    assert price("33612345678", "DE", "mobile") == Decimal("0.30")
    assert price("33612345678", "IT", "mobile") == Decimal("0.21")
    assert price("4420", "FR", "geographic") is None


def test_origin_specific_prefix_does_not_match_other_origins() -> None:
    deck = CompiledDeck.compile(1, T0, [rate("44", "0.05", origin="GB")])
    assert deck.match("442079460000", "FR", "geographic") is None
    match = deck.match("442079460000", "GB", "geographic")
    assert match is not None and match.prefix == "44"


def test_deck_in_force_is_the_latest_activated_by_the_start() -> None:
    decks = [CompiledDeck.compile(n, T0.replace(month=n), []) for n in (1, 3, 5)]
    starts = [d.activates_at for d in decks]
    assert deck_in_force(decks, starts, T0.replace(year=2025)) is None
    assert deck_in_force(decks, starts, T0) is decks[0]
    assert deck_in_force(decks, starts, T0.replace(month=4)) is decks[1]
    assert deck_in_force(decks, starts, T0.replace(month=5)) is decks[2]
    assert deck_in_force(decks, starts, T0.replace(month=12)) is decks[2]


FIVE_CENTS = rate("33", "0.05")


def test_vector_sixty_seconds() -> None:
    priced = price_call(Decimal("60.000"), FIVE_CENTS)
    assert priced.billed_seconds == 60
    assert priced.amount == Decimal("0.05")


def test_vector_every_started_second() -> None:
    assert price_call(Decimal("60.001"), FIVE_CENTS).billed_seconds == 61
    assert price_call(Decimal("0.2"), FIVE_CENTS).billed_seconds == 1


def test_vector_ten_calls_of_sixty_seconds_are_fifty_cents() -> None:
    amounts = [price_call(Decimal(60), FIVE_CENTS).amount for _ in range(10)]
    total = sum((a for a in amounts if a is not None), Decimal(0))
    assert total == Decimal("0.5")
    assert money.round_line(total) == Decimal("0.50")


def test_connect_fee_is_added_once() -> None:
    priced = price_call(Decimal("30"), rate("33", "0.06", fee="0.015"))
    assert priced.amount == Decimal("0.045")


def test_unrated_call_has_no_amount() -> None:
    priced = price_call(Decimal("12.5"), None)
    assert priced.billed_seconds == 13 and priced.amount is None and priced.rate is None


durations = st.integers(min_value=1, max_value=86_400 * 1_000_000).map(
    money.seconds_of_microseconds
)
prices = st.integers(min_value=0, max_value=10_000_000).map(lambda n: Decimal(n).scaleb(-6))
fees = st.integers(min_value=0, max_value=1_000_000).map(lambda n: Decimal(n).scaleb(-6))
EPSILON = Decimal("0.0000005")


@settings(max_examples=300, deadline=None)
@given(
    calls=st.lists(st.tuples(durations, prices, fees), min_size=1, max_size=40),
)
def test_each_call_is_exact_and_a_line_rounds_once(
    calls: list[tuple[Decimal, Decimal, Decimal]],
) -> None:
    amounts = []
    exact_sum = Decimal(0)
    for duration, price, fee in calls:
        priced = price_call(duration, rate("33", str(price), fee=str(fee)))
        assert priced.amount is not None
        exact = Decimal(priced.billed_seconds) * price / Decimal(60) + fee
        assert abs(priced.amount - exact) <= EPSILON
        assert priced.billed_seconds - 1 < duration <= priced.billed_seconds
        amounts.append(priced.amount)
        exact_sum += exact
    line = money.round_line(sum(amounts, Decimal(0)))
    # Each call is off the exact value by half a millionth at most: the line's one rounding
    # is the exact sum's, unless that sum lies within those millionths of a half cent.
    half_cent = money.CENT / 2
    distance = abs((exact_sum - half_cent) % money.CENT)
    distance = min(distance, money.CENT - distance)
    if distance > EPSILON * len(calls):
        assert line == money.round_line(exact_sum)
    else:
        assert abs(line - money.round_line(exact_sum)) <= money.CENT


@settings(max_examples=100, deadline=None)
@given(count=st.integers(min_value=1, max_value=1000), price=prices)
def test_whole_minutes_sum_exactly(count: int, price: Decimal) -> None:
    """Calls of whole minutes are exact: the line is the exact sum's rounding, always."""
    amounts = [price_call(Decimal(60), rate("33", str(price))).amount for _ in range(count)]
    assert money.round_line(sum((a for a in amounts if a is not None), Decimal(0))) == (
        money.round_line(price * count)
    )


def _examples() -> list[str]:
    """Every region's and non-geographic entity's example number of every type, in E.164."""
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(12):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                found.append(phonenumbers.format_number(example, PhoneNumberFormat.E164))
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        example = phonenumbers.example_number_for_non_geo_entity(code)
        if example is not None:
            found.append(phonenumbers.format_number(example, PhoneNumberFormat.E164))
    return found


def _same_as_parse(e164: str) -> None:
    try:
        expected = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException as error:
        try:
            parse_e164(e164)
        except phonenumbers.NumberParseException as fast_error:
            assert fast_error.error_type == error.error_type, e164
        else:
            raise AssertionError(f"{e164}: parse refuses it") from None
        return
    assert parse_e164(e164) == expected, e164


def test_the_quick_parse_is_parse_on_every_example_number() -> None:
    examples = _examples()
    assert len(examples) > 1000
    for e164 in examples:
        _same_as_parse(e164)
        # With a national prefix or a leading zero kept after the country code, too.
        _same_as_parse(e164[:3] + "0" + e164[3:])
        _same_as_parse(e164[:2] + "0" + e164[2:])
        _same_as_parse(e164[:-1])


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="0123456789", min_size=0, max_size=18))
def test_the_quick_parse_is_parse_on_any_digits(digits: str) -> None:
    _same_as_parse("+" + digits)
