"""Hostile text in any free-text field never adds, removes or changes a config object."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graam_pbx.asterisk.render import RenderError, environment, render_all
from graam_pbx.asterisk.snapshot import Snapshot
from tests.unit.asterisk.sample import sample_snapshot, sample_tenant

ENV = environment()
NASTY = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "x\n[evil]\ntype = endpoint",
            "a;--",
            "a\r\nexten => 1,1,System(rm)",
            "${SHELL(id)}",
            "$[1+1]",
            "#include /etc/passwd",
            "#exec /bin/sh",
            '"quoted" <666>',
            "a,b|c",
            "[x]",
            "(+)",
            "\\",
            "José 東京",
            "",
            " padded ",
            "a\x85b",
            "a\u2028b",
            "a\u2029b",
        ]
    ),
)


def _shape(files: dict[str, str]) -> dict[str, list[str]]:
    """Per file: its section headers and the first field of each line (what Asterisk parses)."""
    shape = {}
    for name, text in files.items():
        lines = []
        for line in text.splitlines():
            if line.startswith("[") or line.startswith("#"):
                lines.append(line)
            elif "=" in line and not line.startswith(";"):
                lines.append(line.split("=", 1)[0].strip())
        shape[name] = lines
    return shape


BASELINE = _shape(render_all(ENV, sample_snapshot()))


def _with_text(name: str, box_name: str, email: str, password: str) -> Snapshot:
    tenant = sample_tenant(7, name=name, recorded=True, forwarded=True)
    box = tenant.voicemail[0]._replace(name=box_name, email=email)
    tenant = tenant._replace(voicemail=(box,))
    base = sample_snapshot()
    trunk = base.trunks[0]._replace(password=password)
    authenticating = base.trunks[2]._replace(inbound_password=password)
    return Snapshot(
        tenants=(tenant, base.tenants[1]), trunks=(trunk, base.trunks[1], authenticating)
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=NASTY, box_name=NASTY, email=NASTY, password=NASTY)
def test_free_text_keeps_exactly_the_intended_objects_and_lines(
    name: str, box_name: str, email: str, password: str
) -> None:
    try:
        files = render_all(ENV, _with_text(name, box_name, email, password))
    except RenderError:
        return  # refused outright: nothing would be written
    assert _shape(files) == BASELINE
    for text in files.values():
        # Directives count only at the start of a line; ours include graam/ files only.
        directives = re.findall(r"^\s*#\w+.*$", text, re.M)
        assert all(d.startswith('#include "graam/') for d in directives), directives


@pytest.mark.parametrize("hostile", ["a\nb", "a;b", "a b", "a,b", "${X}", "[x]", "é", ""])
def test_identifiers_refuse_anything_outside_their_alphabet(hostile: str) -> None:
    tenant = sample_tenant(7)
    device = tenant.devices[0]._replace(sip_username=hostile)
    snapshot = Snapshot(tenants=(tenant._replace(devices=(device,)),), trunks=())
    with pytest.raises(RenderError):
        render_all(ENV, snapshot)
