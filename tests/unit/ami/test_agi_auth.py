"""The FastAGI URL key: per tenant, derived from the signing key, checked in constant time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from graam_pbx.ami.agi_auth import agi_key, request_token, tenant_token, token_matches
from graam_pbx.asterisk.render import environment, render_all
from tests.unit.asterisk.sample import sample_snapshot

KEY = agi_key("a signing key of the tests")


def test_each_tenant_has_its_own_key_and_each_signing_key_its_own_keys() -> None:
    assert tenant_token(KEY, 7) != tenant_token(KEY, 8)
    assert tenant_token(KEY, 7) != tenant_token(agi_key("another signing key"), 7)
    assert len(tenant_token(KEY, 7)) == 32
    assert KEY != b"a signing key of the tests"  # derived, never the signing key itself


def test_only_the_tenants_own_key_matches() -> None:
    token = tenant_token(KEY, 7)
    assert token_matches(KEY, 7, token)
    assert not token_matches(KEY, 8, token)
    assert not token_matches(KEY, 7, None)
    assert not token_matches(KEY, 7, "")
    assert not token_matches(KEY, 7, token.upper())
    assert not token_matches(KEY, 7, token[:-1])
    assert not token_matches(KEY, 7, token + "0")
    assert not token_matches(KEY, 7, "é" * 32)


@given(st.text(max_size=80))
def test_no_presented_text_but_the_key_matches(presented: str) -> None:
    assert token_matches(KEY, 7, presented) == (presented == tenant_token(KEY, 7))


def test_the_key_is_read_from_the_url_once() -> None:
    assert request_token("agi://127.0.0.1:4573/login?key=abc") == "abc"
    assert request_token("agi://127.0.0.1:4573/login") is None
    assert request_token("agi://127.0.0.1:4573/login?key=abc&key=abd") is None
    assert request_token("") is None


def test_the_rendered_feature_codes_carry_their_tenants_key() -> None:
    files = render_all(environment(), sample_snapshot(), agi_key=KEY)
    for tenant_id in (7, 8):
        dialplan = files[f"tenants/t{tenant_id}/extensions.conf"]
        lines = [line for line in dialplan.splitlines() if "AGI(" in line]
        assert len(lines) == 8  # *45, *46, *47, *47<reason>, *72<number>, *73, *78, *79
        for line in lines:
            url = line.split("AGI(", 1)[1].split(",", 1)[0].rstrip(")")
            assert token_matches(KEY, tenant_id, request_token(url)), line


def test_without_a_key_the_urls_carry_none() -> None:
    files = render_all(environment(), sample_snapshot())
    assert "?key=" not in files["tenants/t7/extensions.conf"]
