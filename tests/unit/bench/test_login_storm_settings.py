"""The login storm's ``--set``: the one way a trial changes a setting of its role processes
(they never see the shell's ``GRAAM_`` variables), checked before anything starts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bench.login_storm import effective, parse_settings
from graam_pbx.settings import Settings


def test_a_setting_given_reaches_the_processes_and_is_reported_as_run() -> None:
    overrides = parse_settings(["agent_session_concurrency=64"])

    assert overrides == {"agent_session_concurrency": "64"}
    assert effective(overrides, "agent_session_concurrency") == 64
    # What was not set is reported as the processes run it: the default.
    assert effective(overrides, "db_pool_size") == Settings.model_fields["db_pool_size"].default


def test_without_any_the_defaults_are_reported_even_with_the_variable_in_the_shell(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRAAM_AGENT_SESSION_CONCURRENCY", "3")

    assert parse_settings([]) == {}
    assert (
        effective({}, "agent_session_concurrency")
        == Settings.model_fields["agent_session_concurrency"].default
    )


@pytest.mark.parametrize("pair", ["no_such_setting=1", "agent_session_concurrency"])
def test_an_unknown_name_or_a_pair_without_a_value_stops_the_bench(pair: str) -> None:
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        parse_settings([pair])


def test_a_value_the_setting_refuses_stops_the_bench_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="agent_session_concurrency"):
        parse_settings(["agent_session_concurrency=0"])
