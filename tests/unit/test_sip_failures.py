"""Counting failed SIP authentications per source, and what Asterisk's deny list says."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graam_pbx.ami import Message
from graam_pbx.sip_security.failures import (
    FailureWindow,
    allowed,
    parse_failure,
    parse_source,
    remote_address,
    source_of,
)
from graam_pbx.sip_security.worker import render_deny_list


def security_event(event: str, remote: str, service: str = "PJSIP") -> Message:
    # As Asterisk 22 sends them (recorded from the sandbox).
    return Message(
        [
            ("Event", event),
            ("Privilege", "security,all"),
            ("Severity", "Error"),
            ("Service", service),
            ("EventVersion", "1"),
            ("AccountID", "ghost"),
            ("SessionID", "1-11461@127.0.0.22"),
            ("LocalAddress", "IPV4/UDP/127.0.0.1/5060"),
            ("RemoteAddress", remote),
        ]
    )


def test_failures_past_the_threshold_within_the_window_reach_it() -> None:
    window = FailureWindow(threshold=3, window=60)
    assert window.add("192.0.2.1", 0) == 1
    assert window.add("192.0.2.1", 10) == 2
    assert not window.reached("192.0.2.1", 10)
    assert window.add("192.0.2.1", 20) == 3
    assert window.reached("192.0.2.1", 20)


def test_failures_spread_wider_than_the_window_never_reach_it() -> None:
    window = FailureWindow(threshold=3, window=60)
    counts = [window.add("192.0.2.1", at) for at in (0, 40, 80, 120, 160, 200)]
    assert max(counts) == 2
    assert not window.reached("192.0.2.1", 200)


def test_each_source_is_counted_on_its_own() -> None:
    window = FailureWindow(threshold=2, window=60)
    assert window.add("192.0.2.1", 0) == 1
    assert window.add("192.0.2.2", 1) == 1
    assert window.add("192.0.2.1", 2) == 2
    assert window.count("192.0.2.2", 2) == 1


def test_a_forgotten_source_starts_from_zero() -> None:
    window = FailureWindow(threshold=2, window=60)
    window.add("192.0.2.1", 0)
    window.add("192.0.2.1", 1)
    window.forget("192.0.2.1")
    assert window.add("192.0.2.1", 2) == 1


def test_pruning_drops_sources_whose_failures_left_the_window() -> None:
    window = FailureWindow(threshold=5, window=60)
    window.add("192.0.2.1", 0)
    window.add("192.0.2.2", 50)
    window.prune(100)
    assert len(window) == 1
    assert window.count("192.0.2.2", 100) == 1


def test_memory_is_bounded_when_sources_rotate() -> None:
    window = FailureWindow(threshold=5, window=60, max_sources=100)
    for n in range(1000):
        window.add(f"10.0.{n // 256}.{n % 256}", n / 1000)
    assert len(window) == 100
    # The most recent sources are the ones followed.
    assert window.count("10.0.3.231", 1) == 1


@given(st.lists(st.floats(min_value=0, max_value=10_000), min_size=1, max_size=60))
def test_the_count_is_the_failures_inside_the_window(times: list[float]) -> None:
    threshold, span = 7, 300.0
    window = FailureWindow(threshold=threshold, window=span)
    ordered = sorted(times)
    for at in ordered:
        counted = window.add("192.0.2.9", at)
    now = ordered[-1]
    inside = sum(1 for at in ordered if at > now - span)
    assert counted == min(inside, threshold)
    assert window.reached("192.0.2.9", now) == (inside >= threshold)


def test_window_settings_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FailureWindow(threshold=0, window=60)
    with pytest.raises(ValueError):
        FailureWindow(threshold=1, window=0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("IPV4/UDP/127.0.0.22/5060", "127.0.0.22"),
        ("IPV4/TCP/192.0.2.1/40000", "192.0.2.1"),
        ("IPV6/UDP/2001:db8::1/5060", "2001:db8::1"),
        ("IPV6/UDP/[2001:db8::1]/5060", "2001:db8::1"),
        ("IPV4/UDP/not-an-address/5060", None),
        ("", None),
        ("127.0.0.1", None),
    ],
)
def test_the_remote_address_of_a_security_event(value: str, expected: str | None) -> None:
    address = remote_address(value)
    assert (str(address) if address else None) == expected


def test_an_ipv6_source_is_its_64_and_an_ipv4_one_its_address() -> None:
    assert source_of(ipaddress.ip_address("2001:db8:1:2:aaaa::1")) == "2001:db8:1:2::/64"
    assert source_of(ipaddress.ip_address("::ffff:192.0.2.7")) == "192.0.2.7"
    assert source_of(ipaddress.ip_address("192.0.2.7")) == "192.0.2.7"
    assert parse_source(" 2001:db8:1:2::99 ") == "2001:db8:1:2::/64"
    assert parse_source("2001:db8:1:2::/64") == "2001:db8:1:2::/64"
    assert parse_source("192.0.2.7/32") == "192.0.2.7"
    with pytest.raises(ValueError):
        parse_source("192.0.2.0/24")
    with pytest.raises(ValueError):
        parse_source("sip.example.com")


@pytest.mark.parametrize(
    "event",
    ["ChallengeResponseFailed", "InvalidAccountID", "InvalidPassword", "FailedACL"],
)
def test_failed_authentications_are_parsed(event: str) -> None:
    failure = parse_failure(security_event(event, "IPV4/UDP/127.0.0.22/5060"))
    assert failure is not None
    assert failure.event == event
    assert failure.source == "127.0.0.22"


@pytest.mark.parametrize(
    "message",
    [
        security_event("SuccessfulAuth", "IPV4/UDP/127.0.0.22/5060"),
        security_event("ChallengeSent", "IPV4/UDP/127.0.0.22/5060"),
        security_event("InvalidPassword", "IPV4/TCP/127.0.0.1/40000", service="AMI"),
        security_event("InvalidAccountID", "garbage"),
        Message([("Response", "Success"), ("Message", "InvalidAccountID")]),
    ],
)
def test_what_is_not_a_sip_failure_is_ignored(message: Message) -> None:
    assert parse_failure(message) is None


def test_the_allow_list_covers_addresses_and_the_64_around_a_carrier() -> None:
    networks = [
        ipaddress.ip_network("192.0.2.0/28"),
        ipaddress.ip_network("2001:db8:1:2::5/128"),
    ]
    assert allowed("192.0.2.3", networks)
    assert not allowed("192.0.2.16", networks)
    # Blocking this /64 would block the carrier inside it.
    assert allowed("2001:db8:1:2::/64", networks)
    assert not allowed("2001:db8:1:3::/64", networks)


def test_the_deny_list_is_a_named_acl_in_a_stable_order() -> None:
    text = render_deny_list(["2001:db8:1:2::/64", "192.0.2.10", "127.0.0.71", "192.0.2.10"])
    lines = [line for line in text.splitlines() if not line.startswith(";")]
    assert lines == [
        "[graam-sip-blocks]",
        "deny = 127.0.0.71/32",
        "deny = 192.0.2.10/32",
        "deny = 2001:db8:1:2::/64",
    ]
    assert [line for line in render_deny_list([]).splitlines() if not line.startswith(";")] == [
        "[graam-sip-blocks]"
    ]
