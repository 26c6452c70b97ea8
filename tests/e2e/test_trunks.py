"""Carriers through the real Asterisk: who is taken for a carrier, and what a carrier sees.

Each test's trunks use loopback addresses no other test uses (127.0.0.4x), so that no other
trunk of the session's database matches their senders.
"""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.asterisk.applier import ConfigApplier
from tests.conftest import Asterisk, RunningApp
from tests.e2e.sipp import SippPool, SippResult, header
from tests.e2e.test_calls import (
    CALLER,
    ami_events,
    created,
    new_number,
    new_trunk,
    outbound_invite,
    outbound_setup,
    route_number,
)
from tests.factories import PASSWORD, TenantWorld, make_world, unique

Sessions = async_sessionmaker[AsyncSession]

HEADER_CARRIER_IP = "127.0.0.41"  # a carrier known by its address and a header
STRANGER_IP = "127.0.0.42"  # another sender, not one of any trunk's addresses
AUTH_CARRIER_IP = "127.0.0.43"  # a carrier that authenticates
OUTBOUND_CARRIER_IP = "127.0.0.44"  # the carrier's side of outbound calls
CARRIER_KEY = "X-Carrier-Key: 9f2c7d1e"
NO_KEY = "X-Probe: 1"  # a harmless header instead


_RESPONSE = re.compile(r"message received \[\d+\] bytes ?:\n\nSIP/2\.0 (\d{3})")


def responses(result: SippResult) -> list[int]:
    """The status codes of the responses sipp received, in order."""
    return [int(code) for code in _RESPONSE.findall(result.messages)]


async def answering_number(client: httpx.AsyncClient, world: TenantWorld) -> str:
    """A number of the tenant whose calls are answered (an IVR), as E.164."""
    menu = await created(
        await client.post("/api/v1/ivrs", headers=world.admin.headers, json={"name": "main"})
    )
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "ivr", "id": menu["id"]})
    e164: str = number["e164"]
    return e164


async def probe(
    pbx: RunningApp,
    sipp: SippPool,
    trunk_name: str,
    did: str,
    *,
    ip: str,
    extra: str,
    auth: tuple[str, str] | None = None,
    caller: str = CALLER,
) -> tuple[SippResult, bool]:
    """One call from ``ip``; how it ended, and whether Asterisk took it for the trunk (a
    channel of the trunk's endpoint was made)."""
    scenario = "carrier_auth_call.xml" if auth else "carrier_probe.xml"
    prefix = f"PJSIP/trunk-{trunk_name}-"
    async with ami_events(pbx, "Newchannel") as events:
        result = await sipp.uac(
            scenario, ip=ip, service=did, auth=auth, keys={"caller": caller, "extra": extra}
        ).run()
        # Asterisk sends the event before it answers: by now it has arrived, if there is one.
        await pbx.runtime.ami.action("Ping")
    taken = any(e.get("Channel", "").startswith(prefix) for e in events.seen)
    return result, taken


async def test_a_header_trunk_takes_only_calls_with_its_header_from_its_addresses(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    did = await answering_number(client, world)
    carrier = await new_trunk(
        client, world, HEADER_CARRIER_IP, match="ip_and_header", match_header=CARRIER_KEY
    )
    await applier.settled()

    without, taken = await probe(
        pbx, sipp, carrier["name"], did, ip=HEADER_CARRIER_IP, extra=NO_KEY
    )
    assert without.ok, without.describe()
    assert not taken and 200 not in responses(without), without.describe()

    elsewhere, taken = await probe(
        pbx, sipp, carrier["name"], did, ip=STRANGER_IP, extra=CARRIER_KEY
    )
    assert elsewhere.ok, elsewhere.describe()
    assert not taken and 200 not in responses(elsewhere), elsewhere.describe()

    # Naming the trunk's endpoint in From identifies nobody: trunks identify in their mode.
    named, taken = await probe(
        pbx,
        sipp,
        carrier["name"],
        did,
        ip=STRANGER_IP,
        extra=NO_KEY,
        caller=f"trunk-{carrier['name']}",
    )
    assert named.ok, named.describe()
    assert not taken and 200 not in responses(named), named.describe()

    genuine, taken = await probe(
        pbx, sipp, carrier["name"], did, ip=HEADER_CARRIER_IP, extra=CARRIER_KEY
    )
    assert genuine.ok, genuine.describe()
    assert taken and 200 in responses(genuine), genuine.describe()


async def test_an_authenticating_trunk_takes_only_calls_with_its_credentials(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    did = await answering_number(client, world)
    username, password = unique("+3310"), "in-s3cret"
    carrier = await new_trunk(
        client,
        world,
        AUTH_CARRIER_IP,
        match="auth",
        inbound_username=username,
        inbound_password=password,
    )
    await applier.settled()

    anonymous, taken = await probe(
        pbx, sipp, carrier["name"], did, ip=AUTH_CARRIER_IP, extra=NO_KEY
    )
    assert anonymous.ok, anonymous.describe()
    assert not taken and responses(anonymous)[-1] == 401, anonymous.describe()

    wrong, taken = await probe(
        pbx,
        sipp,
        carrier["name"],
        did,
        ip=AUTH_CARRIER_IP,
        extra=NO_KEY,
        auth=(username, "not-the-password"),
    )
    assert not wrong.ok and not taken, wrong.describe()

    genuine, taken = await probe(
        pbx,
        sipp,
        carrier["name"],
        did,
        ip=AUTH_CARRIER_IP,
        extra=NO_KEY,
        auth=(username, password),
    )
    assert genuine.ok, genuine.describe()
    assert taken and 200 in responses(genuine), genuine.describe()


@pytest.mark.parametrize("caller_name", ["Acme Support", None])
async def test_an_outbound_call_shows_the_tenants_caller_name_never_the_agents(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    caller_name: str | None,
) -> None:
    world = await make_world(client, sessions)
    alice = await created(
        await client.post(
            "/api/v1/users",
            headers=world.operator_headers,
            json={
                "email": f"{unique('alice')}@{world.slug}.example",
                "display_name": "Alice Agent",
                "role": "agent",
                "password": PASSWORD,
            },
        )
    )
    device, number, carrier = await outbound_setup(
        client,
        world,
        sipp,
        owner=alice["id"],
        carrier_ip=OUTBOUND_CARRIER_IP,
        caller_id_name=caller_name,
    )
    await applier.settled()
    invite = await outbound_invite(sipp, device, carrier)
    sender = header(invite, "From") or ""
    asserted = header(invite, "P-Asserted-Identity") or ""
    assert "Alice" not in invite, invite
    assert f"<sip:{number['e164']}@" in sender and f"<sip:{number['e164']}@" in asserted, invite
    for identity in (sender, asserted):
        shown = identity.split("<", 1)[0].strip()
        assert shown == (f'"{caller_name}"' if caller_name else ""), invite


async def test_a_trunk_named_by_an_unresolvable_host_is_never_resolved_by_asterisk(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
) -> None:
    """Asterisk resolves an identify host name at every res_pjsip reload (an unresolvable one
    logs getaddrinfo errors and drops the identify); ours names addresses only, so the name
    never reaches Asterisk's resolver and the reload does not wait on DNS."""
    world = await make_world(client, sessions)
    host = f"{unique('carrier')}.invalid"
    log = asterisk.sandbox.log_dir / "messages.log"
    logged_before = log.stat().st_size if log.exists() else 0
    reconnects = pbx.runtime.ami.state.reconnects
    carrier = await new_trunk(client, world, host, inbound_addresses=["127.0.0.45", "192.0.2.0/28"])
    await applier.settled()
    # One more res_pjsip reload of our own, after the applier's: both must leave the name alone.
    reloaded = await pbx.runtime.ami.command("module reload res_pjsip.so", timeout=60)
    assert "reloaded" in reloaded, reloaded

    name = f"trunk-{carrier['name']}"
    shown = await pbx.runtime.ami.command(f"pjsip show identify {name}")
    assert "127.0.0.45/32" in shown and "192.0.2.0/28" in shown, shown
    contact = await pbx.runtime.ami.command(f"pjsip show aor {name}")
    assert f"sip:{host}:5060" in contact, contact  # resolved when a call is sent, if ever
    with log.open(errors="replace") as text:
        text.seek(logged_before)
        assert host not in text.read()
    assert pbx.runtime.ami.state.reconnects == reconnects
