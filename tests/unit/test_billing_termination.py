"""Termination's and port-out's pure rules: the 30 days' notice and the port-out states."""

from __future__ import annotations

from datetime import UTC, date, datetime

from graam_pbx.billing.portout import TRANSITIONS, PortOutState, can_move
from graam_pbx.billing.termination import billing_today, earliest_last_day
from graam_pbx.settings import Settings


def test_the_earliest_last_day_is_thirty_days_ahead() -> None:
    assert earliest_last_day(date(2026, 1, 31)) == date(2026, 3, 2)
    assert earliest_last_day(date(2028, 2, 1)) == date(2028, 3, 2)  # a leap year
    assert earliest_last_day(date(2026, 12, 15)) == date(2027, 1, 14)


def test_today_is_the_billing_clocks() -> None:
    # 23:30 UTC on 31 December is already 1 January in Paris.
    late = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert billing_today(Settings(), late) == date(2027, 1, 1)


def test_port_out_states() -> None:
    assert can_move(PortOutState.REQUESTED, PortOutState.ACCEPTED)
    assert can_move(PortOutState.REQUESTED, PortOutState.CANCELLED)
    assert can_move(PortOutState.ACCEPTED, PortOutState.COMPLETED)
    assert can_move(PortOutState.ACCEPTED, PortOutState.REJECTED)
    assert not can_move(PortOutState.REQUESTED, PortOutState.COMPLETED)
    assert not can_move(PortOutState.ACCEPTED, PortOutState.CANCELLED)
    for final in (PortOutState.COMPLETED, PortOutState.REJECTED, PortOutState.CANCELLED):
        assert TRANSITIONS[final] == frozenset()
