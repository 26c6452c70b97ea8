"""Calls from trunks: [graam-from-trunk] is a fixed dispatcher (asterisk_conf/extensions.conf)
that sends a number to the context named by its last digits, and each tenant's file puts each
of its numbers, both forms, in that context."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from graam_pbx.asterisk.render import (
    FROM_TRUNK_DIGITS,
    FROM_TRUNK_PREFIX,
    RenderError,
    environment,
    from_trunk_context,
    tenant_files,
)
from graam_pbx.sandbox.asterisk import BASE_CONF_DIR
from tests.unit.asterisk.sample import sample_tenant

NUMBERS = ("+33142685307", "+33142685300", "+4930123456742", "+3225550307", "+12125550199")


def contexts(text: str) -> dict[str, list[str]]:
    """Each context's extension lines (``exten =>``/``same =>``), by context name."""
    found: dict[str, list[str]] = defaultdict(list)
    current = ""
    for line in text.splitlines():
        header = re.match(r"^\[([^\]]+)\]", line)
        if header:
            current = header.group(1)
            found.setdefault(current, [])
        elif re.match(r"^\s*(exten|same) =>", line):
            found[current].append(line.strip())
    return dict(found)


def asterisk_pattern(pattern: str) -> re.Pattern[str]:
    """An Asterisk extension pattern (``_`` prefix) as a regular expression: the subset the
    dispatcher uses (character classes, X, N, Z, and a trailing ``.``)."""
    assert pattern.startswith("_"), pattern
    parts = re.findall(r"\[[^\]]+\]|.", pattern[1:])
    translated = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}
    regex = "".join(
        translated.get(part, part if part.startswith("[") else re.escape(part)) for part in parts
    )
    return re.compile(f"^{regex}$")


def tenant_dialplan() -> str:
    base = sample_tenant(7)
    route = base.inbound[0]
    inbound = tuple(route._replace(id=20 + i, e164=e164) for i, e164 in enumerate(NUMBERS))
    files = tenant_files(environment(), base._replace(inbound=inbound))
    return files["tenants/t7/extensions.conf"]


def test_each_number_lands_in_the_context_of_its_last_digits_in_both_forms() -> None:
    found = contexts(tenant_dialplan())
    assert "graam-from-trunk" not in found  # the dispatcher's own context is fixed
    for e164 in NUMBERS:
        name = f"graam-from-trunk-{e164[-FROM_TRUNK_DIGITS:]}"
        assert f"exten => {e164},1,Goto(t7-inbound,${{EXTEN}},1)" in found[name], name
        assert f"exten => {e164[1:]},1,Goto(t7-inbound,{e164},1)" in found[name], name
    # +33142685307 and +3225550307 share a context; every number's lines are in one only.
    assert len(found[from_trunk_context("+3225550307")]) == 4
    from_trunk = [name for name in found if name.startswith(FROM_TRUNK_PREFIX)]
    assert sorted(from_trunk) == sorted({from_trunk_context(e164) for e164 in NUMBERS})
    assert sum(len(found[name]) for name in from_trunk) == 2 * len(NUMBERS)


def test_a_number_and_its_digits_have_one_context() -> None:
    assert (
        from_trunk_context("+33142685307")
        == f"{FROM_TRUNK_PREFIX}{'33142685307'[-FROM_TRUNK_DIGITS:]}"
    )
    with pytest.raises(RenderError):
        from_trunk_context("+3314268530\n[evil]")


def test_the_dispatcher_covers_both_forms_and_names_the_same_contexts() -> None:
    dispatcher = contexts((BASE_CONF_DIR / "extensions.conf").read_text())["graam-from-trunk"]
    patterns = [re.match(r"exten => (_[^,]+),1,", line) for line in dispatcher]
    matchers = [asterisk_pattern(match.group(1)) for match in patterns if match]
    assert matchers, dispatcher
    for e164 in NUMBERS:
        for form in (e164, e164[1:]):
            assert any(m.match(form) for m in matchers), form
    # The same digits as the tenants' files: the dispatcher's ${EXTEN:-N} names the context.
    target = f"{FROM_TRUNK_PREFIX}${{EXTEN:-{FROM_TRUNK_DIGITS}}},${{EXTEN}},1"
    route = [line for line in dispatcher if "DIALPLAN_EXISTS" in line]
    assert (
        len(route) == 1 and f"DIALPLAN_EXISTS({target})" in route[0] and f"?{target})" in route[0]
    )
    # A number no context holds is refused as before (404: cause 1), with no CDR, and the
    # dispatcher never sends a call back to itself.
    unrouted = dispatcher.index("same => n(unrouted),Set(CDR_PROP(disable)=1)")
    assert unrouted > 0 and dispatcher[-1] == "same => n,Hangup(1)"
    assert not any("Goto(graam-from-trunk," in line for line in dispatcher)
