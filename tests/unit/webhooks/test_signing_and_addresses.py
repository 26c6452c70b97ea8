"""Webhook signatures as a receiver checks them, where webhooks may go, and the back-off."""

from __future__ import annotations

import ast
import hashlib
import hmac
import ipaddress
from pathlib import Path

import pytest

from graam_pbx.web.i18n import Texts, catalogue
from graam_pbx.webhooks import addresses, signing
from graam_pbx.webhooks.delivery import MAX_BACKOFF, backoff


def test_the_signature_is_the_hmac_of_the_timestamp_a_dot_and_the_body() -> None:
    body = b'{"id": "7", "type": "call.ended", "data": {}}'
    signed = signing.signature("whsec_key", 1764979200, body)
    expected = hmac.new(b"whsec_key", b"1764979200." + body, hashlib.sha256).hexdigest()
    assert signed == f"v1={expected}"
    assert signing.verify("whsec_key", "1764979200", body, signed, now=1764979250)


@pytest.mark.parametrize(
    ("secret", "timestamp", "body", "now"),
    [
        ("whsec_other", "1764979200", b"{}", 1764979200),  # another key
        ("whsec_key", "1764979201", b"{}", 1764979200),  # another timestamp
        ("whsec_key", "1764979200", b"{ }", 1764979200),  # another body
        ("whsec_key", "1764979200", b"{}", 1764979200 + 301),  # too old: a replay
        ("whsec_key", "soon", b"{}", 1764979200),
    ],
)
def test_a_receiver_refuses_anything_else(
    secret: str, timestamp: str, body: bytes, now: int
) -> None:
    signed = signing.signature("whsec_key", 1764979200, b"{}")
    assert not signing.verify(secret, timestamp, body, signed, now=now)


def test_secrets_are_new_each_time() -> None:
    first, second = signing.new_secret(), signing.new_secret()
    assert first != second and first.startswith("whsec_") and len(first) > 40


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://crm.example.com/x", "http or https"),
        ("https://user:pw@crm.example.com/x", "credentials"),
        ("https:///x", "host"),
        ("https://crm.example.com/x#frag", "fragment"),
        ("https://crm.example.com:99999/x", "port"),
        ("https://crm.example.com/" + "a" * 2000, "at most"),
    ],
)
def test_urls_a_webhook_may_not_use(url: str, reason: str) -> None:
    with pytest.raises(addresses.Refused, match=reason):
        addresses.parse(url)


def test_a_url_split_for_delivery() -> None:
    target = addresses.parse("https://CRM.example.com:8443/hooks?tenant=4")
    assert target == addresses.Target("https", "crm.example.com", 8443, "/hooks?tenant=4")
    assert addresses.parse("http://crm.example.com").port == 80


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "0.0.0.0",  # noqa: S104 - an address refused, nothing binds to it
        "100.64.0.1",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
    ],
)
def test_addresses_that_are_not_public_are_refused_unless_allowed(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not addresses.permitted(ip, [])
    network = ipaddress.ip_network(f"{address}/128" if ip.version == 6 else f"{address}/32")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        network = ipaddress.ip_network(f"{ip.ipv4_mapped}/32")
    assert addresses.permitted(ip, [network])


def test_public_addresses_are_permitted() -> None:
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"):
        assert addresses.permitted(ipaddress.ip_address(address), [])


async def test_a_name_is_checked_on_every_address_it_resolves_to() -> None:
    target = addresses.parse("http://localhost:8080/x")
    with pytest.raises(addresses.Refused, match="not a public address"):
        await addresses.resolve(target, [])
    allowed = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    assert (await addresses.resolve(target, allowed)).is_loopback


def test_the_back_off_doubles_up_to_an_hour() -> None:
    assert [backoff(n, 10.0) for n in (1, 2, 3, 4)] == [10.0, 20.0, 40.0, 80.0]
    assert backoff(30, 10.0) == MAX_BACKOFF


def refusal_reasons() -> set[str]:
    """Every reason ``addresses`` may give, as written in its ``Refused(...)`` calls."""
    tree = ast.parse(Path(addresses.__file__).read_text(encoding="utf-8"))
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "Refused"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    }


def test_every_refusal_reason_is_said_in_french_too() -> None:
    reasons = refusal_reasons()
    assert len(reasons) >= 8, reasons
    missing = sorted(reasons - set(catalogue("fr")))
    assert missing == [], missing


async def test_a_refusal_keeps_its_reason_and_values_for_the_readers_language() -> None:
    with pytest.raises(addresses.Refused) as refused:
        await addresses.resolve(addresses.parse("http://10.0.0.7/hooks"), [])
    err = refused.value
    assert str(err) == err.reason.format(**err.values)
    assert err.values == {"host": "10.0.0.7", "address": "10.0.0.7"}
    french = Texts("fr").gettext(err.reason, **err.values)
    assert french.startswith("10.0.0.7 est 10.0.0.7 : ce n'est pas une adresse publique"), french
