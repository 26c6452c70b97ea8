"""Campaign settings checked without a server: calling hours, retries, scripts."""

from __future__ import annotations

import pytest
from markupsafe import escape
from pydantic import ValidationError

from graam_pbx.campaigns.calls import compiled_script, render_script, script_error
from graam_pbx.campaigns.models import Contact
from graam_pbx.campaigns.schemas.campaigns import DEFAULT_RETRIES, HoursIn, RetryRules
from graam_pbx.campaigns.service import clip_calling_hours
from graam_pbx.errors import Invalid


def hours(weekday: int, start: str, end: str) -> HoursIn:
    return HoursIn(weekday=weekday, start=start, end=end)


def test_calling_hours_are_clipped_to_the_laws_windows() -> None:
    assert clip_calling_hours([hours(4, "09:00", "19:00"), hours(0, "12:00", "15:00")], "RE") == [
        {"weekday": 0, "start": "12:00", "end": "13:00"},
        {"weekday": 0, "start": "14:00", "end": "15:00"},
        {"weekday": 4, "start": "10:00", "end": "13:00"},
        {"weekday": 4, "start": "14:00", "end": "19:00"},
    ]


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (hours(6, "10:00", "12:00"), "body.calling_hours.1"),
        (hours(1, "13:00", "14:00"), "body.calling_hours.1"),
        (hours(1, "20:00", "23:00"), "body.calling_hours.1"),
        (hours(1, "11:00", "11:00"), "body.calling_hours.1.end"),
    ],
)
def test_calling_hours_outside_the_law_are_refused(entry: HoursIn, field: str) -> None:
    with pytest.raises(Invalid) as refused:
        clip_calling_hours([hours(0, "10:00", "11:00"), entry], "FR")
    assert refused.value.details["errors"][0]["field"] == field


def test_retries_named_replace_only_their_outcome() -> None:
    stored = RetryRules.model_validate({"busy": {"delay_seconds": 600, "max": 0}}).merged(
        DEFAULT_RETRIES
    )
    assert stored["busy"] == {"delay_seconds": 600, "max": 0}
    assert stored["no_answer"] == DEFAULT_RETRIES["no_answer"]
    changed = RetryRules.model_validate({"machine": {"delay_seconds": 60, "max": 10}}).merged(
        stored
    )
    assert changed["busy"] == {"delay_seconds": 600, "max": 0}
    assert changed["machine"] == {"delay_seconds": 60, "max": 10}


@pytest.mark.parametrize(
    "rules",
    [
        {"ringing": {"delay_seconds": 600, "max": 1}},
        {"busy": {"delay_seconds": 59, "max": 1}},
        {"busy": {"delay_seconds": 600, "max": 11}},
        {"busy": {"delay_seconds": 600, "max": -1}},
        {"busy": {"delay_seconds": "600", "max": 1}},
    ],
)
def test_retries_outside_the_rules_are_refused(rules: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RetryRules.model_validate(rules)


def test_scripts_render_escaped_with_unknown_fields_empty() -> None:
    contact = Contact(
        number="+262692123456", region="RE", name="Zoé & co", fields={"offer": "<i>x</i>"}
    )
    shown = render_script(
        "{{ name }} ({{ number }}, {{ region }}): {{ fields.offer }}{{ fields.nope }}"
        "{{ fields.nope.deeper }}{{ missing }}.",
        contact,
    )
    assert shown == "Zoé &amp; co (+262692123456, RE): &lt;i&gt;x&lt;/i&gt;."


def test_scripts_reach_no_python_internals() -> None:
    contact = Contact(number="+33612345678", region="FR", name=None, fields={"x": 1})
    shown = render_script(
        "{{ fields.__class__.__mro__ }}{{ ''.__class__ }}{{ name.__class__ }}!", contact
    )
    assert shown == "!"


@pytest.mark.parametrize(
    "script",
    [
        "Hello {{ name ",
        "{% for x in fields %}{{ x }}{% endfor %}",
        "{{ range(10) }}",
        "{{ 'a' * 100000 }}",
        "{{ fields.items() }}",
        "{{ name|replace('a', 'b') }}",
        "{{ name|default(fields.other) }}",
        "{{ lipsum(1000) }}",
        "{{ fields.x[1:2] }}",
    ],
)
def test_a_script_does_no_more_than_show_values(script: str) -> None:
    # Rendering runs in the event loop: no loop, call or arithmetic may make it spin.
    assert script_error(script) is not None
    contact = Contact(number="+33612345678", region="FR", name="Ana", fields={"x": "y"})
    assert render_script(script, contact) == escape(script)


def test_scripts_take_values_and_text_filters() -> None:
    script = "{{ name|trim|upper }} {{ fields['x']|default('-') }} {{ fields.y|default('-') }}"
    assert script_error(script) is None
    contact = Contact(number="+33612345678", region="FR", name=" ana ", fields={"x": "y"})
    assert render_script(script, contact) == "ANA y -"


def test_a_script_is_checked_and_compiled_once_for_every_contact() -> None:
    # The call screen renders the script on each poll, in the event loop: checking and
    # compiling a long script each time took tens of milliseconds.
    unit = "Hello {{ name }}, about {{ fields.offer|default('-')|upper }}. "
    script = unit * (20_000 // len(unit))
    assert script_error(script) is None
    compiled_script.cache_clear()
    ana = Contact(number="+33612345678", region="FR", name="Ana", fields={"offer": "<b>"})
    bob = Contact(number="+33612345679", region="FR", name="Bob", fields={})
    assert render_script(script, ana).startswith("Hello Ana, about &lt;B&gt;. Hello Ana")
    assert render_script(script, bob).startswith("Hello Bob, about -. Hello Bob")
    assert compiled_script.cache_info().misses == 1
    assert compiled_script(script) is compiled_script(script)
    assert compiled_script("{% for x in fields %}{% endfor %}") is None
