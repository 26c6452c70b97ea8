"""A forged FastAGI request changes no agent's state; Asterisk's own requests still work.

The attacker is a raw TCP client on the FastAGI port speaking AGI as Asterisk would: it
sends an environment naming another tenant's phone and answers our ``GET FULL VARIABLE``
with that phone's tenant, device and agent. It tries with no key, a wrong key, another
tenant's key, and with the right key (as if it had leaked) but a channel that does not exist,
that belongs to another device, or that is not running AGI. Each time: nothing changes in the
database or in Asterisk's queues, the answer is ``forbidden``, and the refusal is counted.
Then the tenant's real phone dials ``*45`` through Asterisk and is logged in.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from graam_pbx import metrics
from graam_pbx.ami.agi_auth import agi_key, tenant_token
from graam_pbx.asterisk.applier import ConfigApplier
from tests.conftest import Asterisk, RunningApp
from tests.e2e.sipp import SippPool
from tests.e2e.test_agent_login import (
    LOGGED_IN_PROMPT,
    PHONES_IP,
    Phone,
    Provisioned,
    Sessions,
    agi_commands,
    configured,
    dial,
    end_and_terminate,
    new_tenant,
    prompts_by_device,
    queue_members,
    raw_connection,
    register,
    session_url,
)
from tests.waiting import until

RESULT = "GRAAM_AGENT_RESULT"


async def forge(
    port: int,
    script: str,
    channel: str,
    claim: tuple[int, int, int],
    *,
    key: str | None,
    arguments: tuple[str, ...] = (),
) -> list[str]:
    """Play Asterisk to the FastAGI server for ``claim`` (tenant, device, agent); the
    commands the server sent, until it closed the connection."""
    url = f"agi://127.0.0.1:{port}/{script}" + (f"?key={key}" if key is not None else "")
    environment = [
        "agi_network: yes",
        f"agi_network_script: {script}",
        f"agi_request: {url}",
        f"agi_channel: {channel}",
        "agi_language: en",
        "agi_type: PJSIP",
        *(f"agi_arg_{i}: {value}" for i, value in enumerate(arguments, start=1)),
    ]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    commands: list[str] = []
    try:
        writer.write(("\n".join(environment) + "\n\n").encode())
        async with asyncio.timeout(20):
            while line := (await reader.readline()).decode().rstrip("\n"):
                commands.append(line)
                if line.startswith("GET FULL VARIABLE"):
                    answer = "200 result=1 ({},{},{})".format(*claim)
                else:
                    answer = "200 result=0 endpos=0"
                writer.write(f"{answer}\n".encode())
    finally:
        writer.close()
    return commands


def outcome(commands: list[str]) -> str | None:
    for command in commands:
        words = command.split(" ", 3)
        if words[:3] == ["SET", "VARIABLE", RESULT]:
            return words[3].strip('"')
    return None


def refusals() -> dict[str, float]:
    return {
        reason: metrics.REGISTRY.get_sample_value("graam_agi_refusals_total", {"reason": reason})
        or 0.0
        for reason in ("key", "channel", "device", "unverified")
    }


async def agent_state(
    pbx: RunningApp, sessions: Sessions, made: Provisioned
) -> tuple[list[Any], list[Any], set[tuple[str, str, str]]]:
    """Every session and agent-state event of the tenant, and its queue's members (with
    whether each is paused): what a forged request must leave as it is."""
    async with sessions() as session:
        rows = [
            tuple(row)
            for row in await session.execute(
                text(
                    "SELECT id, user_id, device_id, ended_at, paused, pause_reason "
                    "FROM agent_sessions WHERE tenant_id = :t ORDER BY id"
                ),
                {"t": made.tenant_id},
            )
        ]
        events = [
            tuple(row)
            for row in await session.execute(
                text("SELECT id, kind FROM agent_state_events WHERE tenant_id = :t ORDER BY id"),
                {"t": made.tenant_id},
            )
        ]
    queue = f"t{made.tenant_id}-q{made.queue_id}"
    members = {
        (event["Queue"], event.get("Location") or "", event.get("Paused") or "")
        for event in await pbx.runtime.ami.action_list("QueueStatus", {"Queue": queue})
        if event.name == "QueueMember"
    }
    return rows, events, members


async def live_channels(pbx: RunningApp, endpoint: str) -> list[str]:
    return [
        event["Channel"]
        for event in await pbx.runtime.ami.action_list("CoreShowChannels", {})
        if event.name == "CoreShowChannel"
        and event.get("Channel", "").startswith(f"PJSIP/{endpoint}-")
    ]


def claim_of(made: Provisioned, phone: Phone) -> tuple[int, int, int]:
    return made.tenant_id, phone.device_id, phone.user_id


async def test_forged_agi_requests_change_nothing_and_the_real_phone_still_logs_in(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    attacker, _ = await new_tenant(pbx, client, sessions, licences=2, agents=1)
    victim, made = await new_tenant(pbx, client, sessions, licences=2, agents=2)
    caller, callee = made.agents
    await configured(applier, {attacker.tenant_id, victim.tenant_id})
    await register(tmp_path, asterisk, sipp, made.agents)
    # The caller is logged in (through the API): forged logouts and pauses have a target.
    supervisor = victim.supervisor.headers
    assert (await client.post(session_url(caller.user_id), headers=supervisor)).status_code == 201
    worker = pbx.runtime.agents
    assert worker is not None
    await worker.settled()
    before = await agent_state(pbx, sessions, made)
    assert len(before[2]) == 1, before  # the caller is the queue's one member, not paused

    port = pbx.runtime.settings.agi_port
    key = agi_key(pbx.runtime.signing_key)
    right = tenant_token(key, victim.tenant_id)
    attackers_own = tenant_token(key, attacker.tenant_id)
    assert attackers_own != right
    counted = refusals()

    async def refused(
        script: str,
        channel: str,
        claim: tuple[int, int, int],
        token: str | None,
        reason: str,
        arguments: tuple[str, ...] = (),
    ) -> None:
        commands = await forge(port, script, channel, claim, key=token, arguments=arguments)
        assert outcome(commands) == "forbidden", (script, reason, commands)
        counted[reason] += 1
        assert refusals() == counted, (script, reason)
        await worker.settled()
        assert await agent_state(pbx, sessions, made) == before, (script, reason)

    nowhere = f"PJSIP/{callee.sip_username}-0000fff0"
    for script, phone, arguments in (
        ("login", callee, ()),
        ("logout", caller, ()),
        ("pause", caller, ("3",)),
    ):
        channel = f"PJSIP/{phone.sip_username}-0000fff1"
        claim = claim_of(made, phone)
        await refused(script, channel, claim, None, "key", arguments)  # no key
        await refused(script, channel, claim, "0" * 32, "key", arguments)  # a wrong one
        await refused(script, channel, claim, right.upper(), "key", arguments)
        await refused(script, channel, claim, attackers_own, "key", arguments)
        # The right key (as if it had leaked), but no such channel in Asterisk.
        await refused(script, nowhere, claim, right, "channel", arguments)

    # A real call between the tenant's two phones: the caller's channel runs Dial, the
    # callee's is its own endpoint's (and has inherited the caller's variables).
    call = await sipp.uac(
        "uac_call_held.xml",
        ip=PHONES_IP,
        service="2001",
        auth=(caller.sip_username, caller.password),
        keys={"caller": caller.sip_username},
    ).start()

    async def both_channels_up() -> bool:
        return bool(
            await live_channels(pbx, caller.sip_username)
            and await live_channels(pbx, callee.sip_username)
        )

    await until(both_channels_up, "the call's two channels")
    (calling,) = await live_channels(pbx, caller.sip_username)
    (called,) = await live_channels(pbx, callee.sip_username)
    for script, arguments in (("login", ()), ("logout", ()), ("pause", ("3",))):
        # The caller's device named with the callee's channel, and the other way round.
        await refused(script, called, claim_of(made, caller), right, "device", arguments)
        await refused(script, calling, claim_of(made, callee), right, "device", arguments)
        # The very device's own channel, but in a call, not dialing a code.
        await refused(script, calling, claim_of(made, caller), right, "channel", arguments)
    await pbx.runtime.ami.action("Hangup", {"Channel": calling})
    ended = await call.wait()
    assert ended.ok, ended.describe()

    # Asterisk itself: the callee's phone dials *45 and is logged in.
    async with agi_commands(pbx) as commands:
        await dial(tmp_path, asterisk, [callee], "*45")
    assert prompts_by_device(commands)[callee.sip_username] == [LOGGED_IN_PROMPT]
    await worker.settled()
    queue = f"t{made.tenant_id}-q{made.queue_id}"
    assert await queue_members(pbx, [queue]) == {
        (queue, f"PJSIP/{caller.sip_username}"),
        (queue, f"PJSIP/{callee.sip_username}"),
    }
    assert refusals() == counted  # Asterisk's own request was not refused

    conn = await raw_connection(pbx)
    try:
        await end_and_terminate(conn, [attacker.tenant_id, victim.tenant_id])
    finally:
        await conn.close()
    await configured(applier, {attacker.tenant_id, victim.tenant_id})
