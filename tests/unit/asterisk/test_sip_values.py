"""Whatever the trunk and outbound route schemas accept renders; the rest is refused by both.

The API's schemas and the renderer's filters check with the same functions
(graam_pbx.sip_values): these tests feed the schemas hostile and well-formed values
alike and render every value they accept through the real templates.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from graam_pbx.asterisk.render import RenderError, environment, render_all
from graam_pbx.asterisk.snapshot import Snapshot
from graam_pbx.routing.schemas import OutboundRouteCreate, TrunkCreate, TrunkMatch
from tests.unit.asterisk.sample import sample_snapshot, sample_tenant

ENV = environment()
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HOSTS = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: str(a).upper()),
    st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9.-]{0,30}", fullmatch=True),
    st.text(alphabet="abcxyz0189.:-_[]%/ ", max_size=40),
    st.sampled_from(
        ["2001:db8::1", "::1", "::ffff:192.0.2.1", "fe80::1%eth0", "[2001:db8::1]", "a..b", "x:1"]
    ),
)
USERNAMES = st.one_of(
    st.from_regex(r"[A-Za-z0-9._+-]{1,80}", fullmatch=True),
    st.text(max_size=90),
    st.sampled_from(["+33100", ".user", "-", "a;b", "a b", "a@b", "é", ""]),
)
NETWORKS = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses().flatmap(lambda a: st.integers(0, a.max_prefixlen).map(lambda n: f"{a}/{n}")),
    st.text(alphabet="0123456789abcdef.:/", max_size=50),
    st.sampled_from(["sip.carrier.example", "0.0.0.0/0", "::/0", "10.0.0.1/33", ""]),
)
HEADERS = st.one_of(
    st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20} ?: ?[A-Za-z0-9._~+/=@:!*-]{1,40}", fullmatch=True),
    st.text(max_size=60),
    st.sampled_from(["X-Key: a;b", "X-Key: a b", "Via: x", "X-Key:", ": v", "X-Key: ${X}"]),
)
NAMES = st.one_of(
    st.text(max_size=50),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 .'&_-]{0,39}", fullmatch=True),
    st.sampled_from(["Acme Société", "東京 Support", "a$b", "a,b", "a(b)", '"q"', "x;y", "a "]),
)


def _trunk_body(**changes: Any) -> dict[str, Any]:
    return {"name": "carrier", "host": "192.0.2.1", "country": "FR", **changes}


def _accepted(model: type[TrunkCreate] | type[OutboundRouteCreate], body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError:
        return None


def _plain(secret: SecretStr | str | None) -> str | None:
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret


def _render_trunk(trunk: TrunkCreate) -> str:
    base = sample_snapshot()
    conf = base.trunks[0]._replace(
        name=trunk.name,
        host=trunk.host,
        port=trunk.port,
        transport=trunk.transport.value,
        username=trunk.username,
        password=_plain(trunk.password),
        match=trunk.match.value,
        inbound_addresses=tuple(trunk.inbound_addresses),
        match_header=trunk.match_header,
        inbound_username=trunk.inbound_username,
        inbound_password=_plain(trunk.inbound_password),
    )
    files = render_all(ENV, Snapshot(tenants=(), trunks=(conf,)))
    return files["trunks/1.conf"]


def _value(text: str, key: str) -> list[str]:
    return [line.split(" = ", 1)[1] for line in text.splitlines() if line.startswith(f"{key} = ")]


@PROPERTY
@given(host=HOSTS, port=st.integers(1, 65535))
def test_every_host_the_api_accepts_renders_as_a_sip_uri(host: str, port: int) -> None:
    trunk = _accepted(TrunkCreate, _trunk_body(host=host, port=port))
    if trunk is None:
        with pytest.raises(RenderError):
            _render_trunk(TrunkCreate.model_construct(**{**_trunk_body(), "host": host}))
        return
    text = _render_trunk(trunk)
    [contact] = _value(text, "contact")
    address = ipaddress.ip_address(trunk.host) if ":" in trunk.host else None
    if address is not None:
        assert contact == f"sip:[{address.compressed}]:{port}"
        assert _value(text, "match") == [f"{address.compressed}/128"]
    else:
        assert contact == f"sip:{trunk.host}:{port}"
        for match in _value(text, "match"):
            ipaddress.ip_network(match)  # an address, never a name Asterisk would resolve


@PROPERTY
@given(username=USERNAMES)
def test_every_username_the_api_accepts_renders(username: str) -> None:
    body = _trunk_body(
        username=username,
        password="pw",
        match="auth",
        inbound_username=username,
        inbound_password="in-pw",
    )
    trunk = _accepted(TrunkCreate, body)
    if trunk is None:
        with pytest.raises(RenderError):
            _render_trunk(TrunkCreate.model_construct(**{**body, "match": TrunkMatch.AUTH}))
        return
    assert _value(_render_trunk(trunk), "username") == [username, username]


@PROPERTY
@given(addresses=st.lists(NETWORKS, max_size=4))
def test_every_inbound_address_the_api_accepts_renders_as_cidr(addresses: list[str]) -> None:
    trunk = _accepted(
        TrunkCreate, _trunk_body(host="sip.carrier.example", inbound_addresses=addresses)
    )
    if trunk is None:
        return
    matches = _value(_render_trunk(trunk), "match")
    if not addresses:
        assert matches == []
        return
    [match] = matches
    rendered = match.split(",")
    assert len(rendered) == len(addresses)
    for text, given_text in zip(rendered, addresses, strict=True):
        assert "/" in text  # with a prefix length: never resolved through DNS
        assert ipaddress.ip_network(text) == ipaddress.ip_network(given_text, strict=False)


@PROPERTY
@given(header=HEADERS)
def test_every_header_the_api_accepts_renders(header: str) -> None:
    trunk = _accepted(TrunkCreate, _trunk_body(match="ip_and_header", match_header=header))
    if trunk is None:
        return
    [rendered] = _value(_render_trunk(trunk), "match_header")
    name, value = (part.strip() for part in header.split(":", 1))
    assert rendered == f"{name}: {value}"


@PROPERTY
@given(name=NAMES)
def test_every_caller_name_the_api_accepts_renders_alone_on_its_line(name: str) -> None:
    body = {"name": "out", "trunk_id": 1, "caller_id_number_id": 2, "allowed_countries": ["FR"]}
    route = _accepted(OutboundRouteCreate, {**body, "caller_id_name": name})
    tenant = sample_tenant(7)
    outbound = tenant.outbound[0]._replace(caller_name=name)
    snapshot = Snapshot(tenants=(tenant._replace(outbound=(outbound,)),), trunks=())
    if route is None:
        if name:  # an empty name is refused by the API; the renderer reads it as none
            with pytest.raises(RenderError):
                render_all(ENV, snapshot)
        return
    text = render_all(ENV, snapshot)["tenants/t7/extensions.conf"]
    lines = re.findall(r"^ same => n,Set\(CALLERID\(name\)=(.*)\)$", text, re.M)
    assert lines and set(lines) == {name}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"host": "2001:db8::1%eth0"}, "host"),
        ({"host": "[2001:db8::1]"}, "host"),
        ({"username": "a;b"}, "username"),
        ({"inbound_addresses": ["sip.carrier.example"]}, "inbound_addresses"),
        ({"inbound_addresses": ["0.0.0.0/0"]}, "inbound_addresses"),
        ({"match_header": "Via: SIP/2.0"}, "match_header"),
        ({"match": "anything"}, "match"),
    ],
)
def test_what_cannot_render_is_refused_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        TrunkCreate.model_validate(_trunk_body(**changes))
    assert {error["loc"][0] for error in caught.value.errors()} == {field}


def test_ipv6_host_and_plus_username_render_as_asterisk_reads_them() -> None:
    trunk = TrunkCreate.model_validate(
        _trunk_body(host="2001:DB8::10", port=5061, username="+33100", password="pw")
    )
    text = _render_trunk(trunk)
    assert _value(text, "contact") == ["sip:[2001:db8::10]:5061"]
    assert _value(text, "match") == ["2001:db8::10/128"]
    assert _value(text, "username") == ["+33100"]
