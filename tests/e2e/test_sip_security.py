"""Attacks on SIP through the real Asterisk: brute force gets its source blocked, user names
cannot be told apart by their challenge.

An attacker (sipp on its own loopback address) sends wrong-password REGISTERs past the
threshold: the control plane hears Asterisk's security events, blocks the source in Postgres
and Asterisk denies it (403) even with the right password, while a phone on another address
keeps registering; an operator's unblock lets the source in again.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import select

from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.sip_security.models import SipBlock
from graam_pbx.sip_security.worker import ACL_NAME, SipSecurityWorker
from tests.conftest import Asterisk, RunningApp
from tests.e2e.sipp import SippPool, SippResult
from tests.e2e.test_agent_login import Sessions
from tests.e2e.test_calls import new_device
from tests.factories import make_world
from tests.waiting import until

# Each role on an address of its own: Asterisk blocks by source address.
ATTACKER_IP = "127.0.0.71"
PHONE_IP = "127.0.0.72"
PROBE_IP = "127.0.0.73"
WAIT = 20  # seconds for each step the control plane or Asterisk takes on its own


def worker(pbx: RunningApp) -> SipSecurityWorker:
    found: SipSecurityWorker = pbx.app.state.sip_security
    return found


async def block_of(sessions: Sessions, address: str) -> SipBlock | None:
    async with sessions() as session:
        return await session.scalar(
            select(SipBlock).where(SipBlock.address == address, SipBlock.unblocked_at.is_(None))
        )


async def denied_by_asterisk(pbx: RunningApp) -> str:
    """The named ACL as Asterisk holds it now."""
    return await pbx.runtime.ami.command(f"acl show {ACL_NAME}")


def responses(result: SippResult) -> list[str]:
    """Status lines of the SIP responses sipp received."""
    return re.findall(r"^SIP/2\.0 (\d{3} [^\r\n]*)", result.messages, re.MULTILINE)


def realms(result: SippResult) -> set[str]:
    return set(re.findall(r'^WWW-Authenticate:.*?realm="([^"]*)"', result.messages, re.MULTILINE))


async def test_a_brute_forcing_source_is_blocked_and_other_phones_keep_registering(
    pbx: RunningApp,
    asterisk: Asterisk,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    device: dict[str, Any] = await new_device(client, world, "301")
    other: dict[str, Any] = await new_device(client, world, "302")
    await applier.settled()
    name, right = device["sip_username"], device["password"]
    phone = (other["sip_username"], other["password"])
    threshold = worker(pbx).policy.threshold

    before = await sipp.uac("register.xml", ip=PHONE_IP, service=phone[0], auth=phone).run()
    assert before.ok, before.describe()

    # Wrong passwords at 50/s, past the threshold: the attempts after the block are refused
    # at once (403 instead of a challenge), so sipp's own verdict is not the point.
    await sipp.uac(
        "register_refused.xml",
        ip=ATTACKER_IP,
        service=name,
        auth=(name, "not-the-password"),
        calls=threshold + 5,
        rate=50,
    ).run()

    async def blocked() -> bool:
        return await block_of(sessions, ATTACKER_IP) is not None

    await until(blocked, f"block of {ATTACKER_IP}", WAIT)
    block = await block_of(sessions, ATTACKER_IP)
    assert block is not None
    assert block.failures >= threshold
    assert "failed SIP authentications" in block.reason
    assert block.expires_at > block.blocked_at

    async def enforced() -> bool:
        return ATTACKER_IP in await denied_by_asterisk(pbx)

    await until(enforced, f"{ATTACKER_IP} in Asterisk's deny list", WAIT)

    # Asterisk's security log, for fail2ban, holds the same failures with their source.
    security_log = asterisk.sandbox.log_dir / "security.log"

    async def logged() -> bool:
        text = security_log.read_text() if security_log.exists() else ""
        return any(
            'SecurityEvent="ChallengeResponseFailed"' in line
            and f'RemoteAddress="IPV4/UDP/{ATTACKER_IP}/' in line
            for line in text.splitlines()
        )

    await until(logged, f"failures of {ATTACKER_IP} in {security_log}", WAIT)

    # The right password no longer helps the blocked source.
    refused = await sipp.uac(
        "register.xml", ip=ATTACKER_IP, service=name, auth=(name, right), timeout=10
    ).run()
    assert not refused.ok
    assert responses(refused) and all(status.startswith("403") for status in responses(refused)), (
        refused.describe()
    )
    contacts = await pbx.runtime.ami.command("pjsip show contacts")
    assert ATTACKER_IP not in contacts

    # Another source's phone is not affected.
    still = await sipp.uac("register.xml", ip=PHONE_IP, service=phone[0], auth=phone).run()
    assert still.ok, still.describe()

    listed = await client.get("/api/v1/sip-blocks", headers=world.operator.headers)
    assert listed.status_code == 200, listed.text
    (entry,) = [item for item in listed.json()["items"] if item["address"] == ATTACKER_IP]
    assert entry["active"] is True and entry["unblocked_at"] is None

    # Tenant users may neither see nor lift blocks.
    assert (await client.get("/api/v1/sip-blocks", headers=world.admin.headers)).status_code == 403
    assert (
        await client.delete(f"/api/v1/sip-blocks/{ATTACKER_IP}", headers=world.admin.headers)
    ).status_code == 403

    lifted = await client.delete(
        f"/api/v1/sip-blocks/{ATTACKER_IP}", headers=world.operator.headers
    )
    assert lifted.status_code == 204, lifted.text

    async def let_in() -> bool:
        return ATTACKER_IP not in await denied_by_asterisk(pbx)

    await until(let_in, f"{ATTACKER_IP} out of Asterisk's deny list", WAIT)
    again = await sipp.uac("register.xml", ip=ATTACKER_IP, service=name, auth=(name, right)).run()
    assert again.ok, again.describe()

    history = await client.get(
        "/api/v1/sip-blocks", params={"active": "false"}, headers=world.operator.headers
    )
    (old,) = [item for item in history.json()["items"] if item["id"] == entry["id"]]
    assert old["active"] is False and old["unblocked_by"] == world.operator.email
    assert (
        await client.delete(f"/api/v1/sip-blocks/{ATTACKER_IP}", headers=world.operator.headers)
    ).status_code == 404


async def test_unblocking_something_that_is_not_an_address_is_refused(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    response = await client.delete("/api/v1/sip-blocks/1.2.3.4.5", headers=world.operator.headers)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error_id"] == "validation-failed"
    assert body["details"]["errors"][0]["field"] == "path.address"


async def test_known_and_unknown_user_names_get_the_same_realm(
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    device: dict[str, Any] = await new_device(client, world, "303")
    await applier.settled()
    name = device["sip_username"]
    known = await sipp.uac(
        "register_refused.xml", ip=PROBE_IP, service=name, auth=(name, "wrong-password")
    ).run()
    unknown = await sipp.uac(
        "register_refused.xml", ip=PROBE_IP, service="nobody-here", auth=("nobody-here", "x")
    ).run()
    assert known.ok, known.describe()
    assert unknown.ok, unknown.describe()
    assert realms(known) == realms(unknown) == {"graam"}
