"""Contact numbers to E.164 with their region and time zones (``campaigns.phones``)."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graam_pbx.campaigns.phones import (
    REGION_TIME_ZONES,
    ContactNumber,
    InvalidNumber,
    parse_contact_number,
)

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")  # the contacts table's check constraint


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("06 12 34 56 78", "FR", ContactNumber("+33612345678", "FR", ("Europe/Paris",))),
        ("+33 1 42 12 34 56", "FR", ContactNumber("+33142123456", "FR", ("Europe/Paris",))),
        ("01.42.12.34.56", "FR", ContactNumber("+33142123456", "FR", ("Europe/Paris",))),
        ("0033142123456", "FR", ContactNumber("+33142123456", "FR", ("Europe/Paris",))),
        # The overseas departments' national prefixes, written in a French list.
        ("0262 12 34 56", "FR", ContactNumber("+262262123456", "RE", ("Indian/Reunion",))),
        ("0692 12 34 56", "FR", ContactNumber("+262692123456", "RE", ("Indian/Reunion",))),
        ("0269 61 23 45", "FR", ContactNumber("+262269612345", "YT", ("Indian/Mayotte",))),
        ("0639 40 12 34", "FR", ContactNumber("+262639401234", "YT", ("Indian/Mayotte",))),
        ("0590 12 34 56", "FR", ContactNumber("+590590123456", "GP", ("America/Guadeloupe",))),
        ("0690 12 34 56", "FR", ContactNumber("+590690123456", "GP", ("America/Guadeloupe",))),
        ("0590 27 12 34", "FR", ContactNumber("+590590271234", "BL", ("America/St_Barthelemy",))),
        ("0596 30 12 34", "FR", ContactNumber("+596596301234", "MQ", ("America/Martinique",))),
        ("0696 12 34 56", "FR", ContactNumber("+596696123456", "MQ", ("America/Martinique",))),
        ("0594 12 34 56", "FR", ContactNumber("+594594123456", "GF", ("America/Cayenne",))),
        ("0694 12 34 56", "FR", ContactNumber("+594694123456", "GF", ("America/Cayenne",))),
        # E.164 forms, and the same plan read from an overseas list.
        ("+262 692 12 34 56", "FR", ContactNumber("+262692123456", "RE", ("Indian/Reunion",))),
        ("0612345678", "RE", ContactNumber("+33612345678", "FR", ("Europe/Paris",))),
        ("0692123456", "RE", ContactNumber("+262692123456", "RE", ("Indian/Reunion",))),
        # Other countries: phonenumbers' zones.
        ("+1 212 555 0100", "FR", ContactNumber("+12125550100", "US", ("America/New_York",))),
        ("020 7946 0958", "GB", ContactNumber("+442079460958", "GB", ("Europe/London",))),
        # An international number needs no valid default region.
        ("+33 6 12 34 56 78", "", ContactNumber("+33612345678", "FR", ("Europe/Paris",))),
    ],
)
def test_numbers_to_e164_region_and_zones(raw: str, region: str, expected: ContactNumber) -> None:
    assert parse_contact_number(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("", "FR", "the number is empty"),
        ("   ", "FR", "the number is empty"),
        ("abc", "FR", "not a phone number"),
        ("06 12", "FR", "not a valid number of its country"),
        ("0596 12 34 56", "FR", "not a valid number of its country"),  # not Paris time either
        ("+800 1234 5678", "FR", "not a number of a country"),
        ("0612345678", "ZZ", "unknown default region 'ZZ'"),
        ("20100000000000", "DE", "longer than the 15 digits of an international number"),
        ("0" * 41, "FR", "longer than 40 characters"),
    ],
)
def test_refused_numbers_say_why(raw: str, region: str, reason: str) -> None:
    with pytest.raises(InvalidNumber) as refused:
        parse_contact_number(raw, region)
    assert str(refused.value) == reason


def test_every_region_zone_exists() -> None:
    for zones in REGION_TIME_ZONES.values():
        for zone in zones:
            ZoneInfo(zone)
    assert len(REGION_TIME_ZONES["PF"]) == 3  # a Polynesian number may ring in any of three


@settings(max_examples=300, deadline=None)
@given(
    raw=st.text(alphabet="0123456789 +-.()/x", max_size=24) | st.text(max_size=30),
    region=st.sampled_from(["FR", "RE", "GP", "US", "GB", "DE"]),
)
def test_any_text_is_a_callable_number_or_a_reason(raw: str, region: str) -> None:
    try:
        contact = parse_contact_number(raw, region)
    except InvalidNumber as refused:
        assert str(refused)
        return
    assert E164.match(contact.number)
    assert contact.time_zones
    # Its E.164 form reads back the same from any list.
    assert parse_contact_number(contact.number, "FR") == contact
