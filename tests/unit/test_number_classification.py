"""What kind of number a DID is: the pure decision the numbers API rests on."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType

from graam_pbx.numbers.models import NumberType
from graam_pbx.numbers.schemas import classify


@pytest.mark.parametrize(
    ("e164", "country", "number_type"),
    [
        ("+33142685300", "FR", NumberType.GEOGRAPHIC),
        ("+33612345678", "FR", NumberType.MOBILE),
        ("+33800123456", "FR", NumberType.TOLL_FREE),
        ("+33912345678", "FR", NumberType.NATIONAL),  # VoIP
        ("+14155550100", "US", NumberType.GEOGRAPHIC),  # fixed line or mobile
        ("+448000000000", "GB", NumberType.TOLL_FREE),
        ("+35315550123", "IE", NumberType.GEOGRAPHIC),
        ("+390612345678", "IT", NumberType.GEOGRAPHIC),
        ("+4930123456", "DE", NumberType.GEOGRAPHIC),
    ],
)
def test_known_numbers(e164: str, country: str, number_type: NumberType) -> None:
    kind = classify(e164)
    assert (kind.country, kind.number_type) == (country, number_type)


@pytest.mark.parametrize(
    ("e164", "reason"),
    [
        ("+33899123456", "premium-rate"),
        ("+448712345678", "premium-rate"),
        ("+80012345678", "one country"),
        ("+3314123456", "not a valid"),
        ("33142685300", "E.164"),
        ("", "E.164"),
    ],
)
def test_refused_numbers(e164: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        classify(e164)


_SOLD = {
    PhoneNumberType.FIXED_LINE: NumberType.GEOGRAPHIC,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: NumberType.GEOGRAPHIC,
    PhoneNumberType.MOBILE: NumberType.MOBILE,
    PhoneNumberType.TOLL_FREE: NumberType.TOLL_FREE,
    PhoneNumberType.SHARED_COST: NumberType.NATIONAL,
    PhoneNumberType.VOIP: NumberType.NATIONAL,
    PhoneNumberType.PERSONAL_NUMBER: NumberType.NATIONAL,
    PhoneNumberType.UAN: NumberType.NATIONAL,
}
_ALL_TYPES = [
    *_SOLD,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.PAGER,
    PhoneNumberType.VOICEMAIL,
]


@settings(max_examples=300, deadline=None)
@given(
    region=st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)),
    kind=st.sampled_from(_ALL_TYPES),
)
def test_example_numbers_of_every_country_classify_as_libphonenumber_says(
    region: str, kind: int
) -> None:
    example = phonenumbers.example_number_for_type(region, kind)
    if example is None:
        return  # that country has no numbers of this kind
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    actual = phonenumbers.number_type(example)
    if actual in _SOLD:
        kind_of = classify(e164)
        assert kind_of.number_type is _SOLD[actual]
        assert kind_of.country == phonenumbers.region_code_for_number(example)
    else:
        with pytest.raises(ValueError):
            classify(e164)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=30),
        st.from_regex(r"\+[0-9]{1,16}", fullmatch=True),
        st.from_regex(r"\+[0-9 ()-]{4,20}", fullmatch=True),
    )
)
def test_any_text_is_sold_in_e164_form_or_refused_with_value_error(text: str) -> None:
    try:
        kind = classify(text)
    except ValueError:
        return
    parsed = phonenumbers.parse(text, None)
    assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == text
    assert kind.country in phonenumbers.SUPPORTED_REGIONS
    assert kind.number_type in NumberType
