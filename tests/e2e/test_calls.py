"""The call flows users pay for, placed by sipp phones and carriers through the real Asterisk.

Phones register from 127.0.0.1 with the credentials the API generated; the carrier calls in
from 127.0.0.2 (Asterisk knows a trunk by its address) and answers outbound calls on
127.0.0.3. Every test makes its own tenant, numbers, trunks and ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import phonenumbers
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami.protocol import Message
from graam_pbx.asterisk.applier import ConfigApplier
from tests.conftest import Asterisk, RunningApp
from tests.e2e.phones import PHONES_IP as PHONES_IP  # where other tests import it from
from tests.e2e.phones import reachable_phone
from tests.e2e.sipp import Sipp, SippPool, SippResult, header
from tests.factories import PASSWORD, TenantWorld, make_world, unique

Sessions = async_sessionmaker[AsyncSession]

CARRIER_IP = "127.0.0.2"  # calls in from the carrier
CARRIER_UAS_IP = "127.0.0.3"  # the carrier's side of outbound calls
CALLER = "+33612345678"  # who calls the tenant's numbers
TENANT_TIMEZONE = "Europe/Paris"  # make_world's tenants, and so their schedules
ALWAYS_OPEN = [{"day": day, "open": "00:00", "close": "24:00"} for day in range(7)]

_suffix = itertools.count(secrets.randbelow(10_000_000) * 10)


def new_did() -> str:
    """A valid Paris number no other test of the session uses."""
    while True:
        e164 = f"+331{next(_suffix) % 100_000_000:08d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(e164)):
            return e164


async def eventually(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Wait for ``check`` (a file Asterisk writes) to hold."""
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"no {what} within {timeout:g} s") from None


class AmiEvents:
    """AMI events of some names, as Asterisk sends them during a test."""

    def __init__(self) -> None:
        self.seen: list[Message] = []
        self._arrived = asyncio.Event()

    async def collect(self, message: Message) -> None:
        self.seen.append(message)
        self._arrived.set()

    async def wait_for(self, predicate: Callable[[Message], bool], timeout: float = 10) -> Message:
        async with asyncio.timeout(timeout):
            while True:
                self._arrived.clear()
                for message in self.seen:
                    if predicate(message):
                        return message
                await self._arrived.wait()


@contextlib.asynccontextmanager
async def ami_events(pbx: RunningApp, *names: str) -> AsyncIterator[AmiEvents]:
    events = AmiEvents()
    bus = pbx.runtime.bus
    subscription = bus.subscribe(f"e2e-{uuid.uuid4().hex}", names, events.collect)
    try:
        yield events
    finally:
        await bus.unsubscribe(subscription)


# ---- provisioning through the API ------------------------------------------------------------


async def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def new_agent(client: httpx.AsyncClient, world: TenantWorld) -> int:
    """Another agent of the tenant (one device per agent, as in a real call centre)."""
    email = f"{unique('agent')}@{world.slug}.example"
    body = {"email": email, "display_name": "Agent", "role": "agent", "password": PASSWORD}
    user = await created(
        await client.post("/api/v1/users", headers=world.operator_headers, json=body)
    )
    user_id: int = user["id"]
    return user_id


async def new_device(
    client: httpx.AsyncClient, world: TenantWorld, extension: str, user_id: int | None = None
) -> dict[str, Any]:
    """A device and its generated SIP credentials (the password is shown once)."""
    body = {
        "user_id": user_id or world.agent.user_id,
        "name": f"desk{extension}",
        "extension": extension,
    }
    return await created(
        await client.post("/api/v1/devices", headers=world.admin.headers, json=body)
    )


async def new_number(client: httpx.AsyncClient, world: TenantWorld) -> dict[str, Any]:
    """A number the operator sells and the tenant buys."""
    e164 = new_did()
    entry = [{"e164": e164, "monthly_price": "1.00", "currency": "EUR"}]
    await created(
        await client.post("/api/v1/catalogue/numbers", headers=world.operator.headers, json=entry)
    )
    return await created(
        await client.post("/api/v1/numbers", headers=world.admin.headers, json={"e164": e164})
    )


async def new_trunk(
    client: httpx.AsyncClient, world: TenantWorld, host: str, port: int = 5060, **extra: Any
) -> dict[str, Any]:
    body = {"name": unique("carrier"), "host": host, "port": port, "country": "FR", **extra}
    return await created(
        await client.post("/api/v1/trunks", headers=world.operator.headers, json=body)
    )


async def new_voicemail_box(
    client: httpx.AsyncClient, world: TenantWorld, number: str = "800"
) -> dict[str, Any]:
    body = {"number": number, "name": "After hours", "pin": "4711"}
    return await created(
        await client.post("/api/v1/voicemail-boxes", headers=world.admin.headers, json=body)
    )


async def route_number(
    client: httpx.AsyncClient,
    world: TenantWorld,
    number: dict[str, Any],
    open_destination: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    body = {"number_id": number["id"], "open_destination": open_destination, **extra}
    return await created(
        await client.post("/api/v1/inbound-routes", headers=world.admin.headers, json=body)
    )


# ---- phones, carriers and Asterisk's state --------------------------------------------------


async def registered_phone(
    pbx: RunningApp, sipp: SippPool, device: dict[str, Any], scenario: str = "uas_answer.xml"
) -> Sipp:
    """The device registered from a sipp UAS running ``scenario``, and reachable."""
    return await reachable_phone(pbx.runtime.ami, pbx.runtime.bus, sipp, device, scenario)


async def add_queue_member(
    pbx: RunningApp, world: TenantWorld, queue: dict[str, Any], device: dict[str, Any], penalty: int
) -> None:
    # Members are dynamic: until agents log in through the API, the test adds them.
    await pbx.runtime.ami.action(
        "QueueAdd",
        {
            "Queue": f"t{world.tenant_id}-q{queue['id']}",
            "Interface": f"PJSIP/{device['sip_username']}",
            "Penalty": str(penalty),
            "MemberName": device["sip_username"],
        },
    )


def voicemail_dir(asterisk: Asterisk, world: TenantWorld, box: dict[str, Any]) -> Path:
    spool: Path = asterisk.sandbox.spool_dir
    return spool / "voicemail" / f"t{world.tenant_id}" / str(box["number"])


async def leave_message(
    pbx: RunningApp,
    sipp: SippPool,
    asterisk: Asterisk,
    world: TenantWorld,
    box: dict[str, Any],
    did: str,
) -> Path:
    """The carrier calls ``did``, which ends in ``box``, and leaves a message; its INBOX file."""
    folder = voicemail_dir(asterisk, world, box)
    caller = await sipp.uac(
        "carrier_leave_message.xml", ip=CARRIER_IP, service=did, keys={"caller": CALLER}
    ).start()

    def recording_or_gone() -> bool:
        # app_voicemail creates its temporary message once the greeting and the beep are over.
        return not caller.running or any(path.is_file() for path in (folder / "tmp").glob("*"))

    await eventually(recording_or_gone, "recording", 45)
    if not caller.running:
        ended = await caller.wait()
        raise AssertionError(f"the call ended before the recording:\n{ended.describe()}")
    channels = await pbx.runtime.ami.action_list("CoreShowChannels", {})
    (channel,) = [
        event["Channel"]
        for event in channels
        if event.get("Application") == "VoiceMail"
        and event.get("ApplicationData", "").startswith(f"{box['number']}@t{world.tenant_id}")
    ]
    # The caller's cue to speak: an in-dialog MESSAGE on its channel.
    await pbx.runtime.ami.action("SendText", {"Channel": channel, "Message": "speak now"})
    result = await caller.wait()
    assert result.ok, result.describe()
    message = folder / "INBOX" / "msg0000.txt"
    await eventually(lambda: message.exists() and any(folder.glob("INBOX/msg0000.wav")), "message")
    return message


# ---- 1. registration -------------------------------------------------------------------------


async def test_a_device_registers_with_its_own_credentials_only(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    device = await new_device(client, world, "201")
    foreign = await new_device(client, other, "201", other.agent.user_id)
    await applier.settled()
    name = device["sip_username"]

    registration = await sipp.uac(
        "register.xml", ip=PHONES_IP, service=name, auth=(name, device["password"])
    ).run()
    assert registration.ok, registration.describe()

    wrong = await sipp.uac(
        "register_refused.xml", ip=PHONES_IP, service=name, auth=(name, "not-the-password")
    ).run()
    assert wrong.ok, wrong.describe()

    borrowed = foreign["sip_username"]
    across = await sipp.uac(
        "register_refused.xml", ip=PHONES_IP, service=borrowed, auth=(borrowed, device["password"])
    ).run()
    assert across.ok, across.describe()
    contacts = await pbx.runtime.ami.command("pjsip show contacts")
    assert name in contacts
    assert borrowed not in contacts


# ---- 2. internal calls -----------------------------------------------------------------------


async def test_an_extension_rings_its_tenants_phone_and_never_another_tenants(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    caller = await new_device(client, world, "201")
    callee = await new_device(client, world, "202", await new_agent(client, world))
    stranger = await new_device(client, other, "301", other.agent.user_id)
    await applier.settled()
    callee_phone = await registered_phone(pbx, sipp, callee)
    stranger_phone = await registered_phone(pbx, sipp, stranger)
    credentials = (caller["sip_username"], caller["password"])
    keys = {"caller": caller["sip_username"]}

    call = await sipp.uac(
        "uac_call.xml", ip=PHONES_IP, service="202", auth=credentials, keys=keys
    ).run()
    assert call.ok, call.describe()
    answered = await callee_phone.wait()
    assert answered.ok, answered.describe()

    refused = await sipp.uac(
        "uac_call_refused.xml", ip=PHONES_IP, service="301", auth=credentials, keys=keys
    ).run()
    assert refused.ok, refused.describe()
    untouched = await stranger_phone.stop()
    assert untouched.received("INVITE") == [], untouched.describe()


# ---- 3. inbound: business hours, IVR, queue, voicemail ---------------------------------------


async def test_an_open_number_reaches_the_ivr_and_its_queue_rings_the_lowest_penalty(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    admin = world.admin.headers
    first = await new_device(client, world, "201")
    backup = await new_device(client, world, "202", await new_agent(client, world))
    queue = await created(
        await client.post(
            "/api/v1/queues", headers=admin, json={"name": "sales", "strategy": "linear"}
        )
    )
    menu = await created(
        await client.post(
            "/api/v1/ivrs",
            headers=admin,
            json={"name": "main", "options": {"1": {"type": "queue", "id": queue["id"]}}},
        )
    )
    box = await new_voicemail_box(client, world)
    hours = await created(
        await client.post(
            "/api/v1/schedules", headers=admin, json={"name": "always", "weekly": ALWAYS_OPEN}
        )
    )
    number = await new_number(client, world)
    await route_number(
        client,
        world,
        number,
        {"type": "ivr", "id": menu["id"]},
        schedule_id=hours["id"],
        closed_destination={"type": "voicemail", "id": box["id"]},
    )
    await new_trunk(client, world, CARRIER_IP)
    await applier.settled()
    first_phone = await registered_phone(pbx, sipp, first, "uas_answer_hangup.xml")
    backup_phone = await registered_phone(pbx, sipp, backup)
    # Linear order alone would ring the backup first: it is added first.
    await add_queue_member(pbx, world, queue, backup, penalty=1)
    await add_queue_member(pbx, world, queue, first, penalty=0)

    queue_name = f"t{world.tenant_id}-q{queue['id']}"
    async with ami_events(pbx, "AgentConnect") as events:
        call = await sipp.uac(
            "carrier_press_1.xml", ip=CARRIER_IP, service=number["e164"], keys={"caller": CALLER}
        ).run()
        assert call.ok, call.describe()
        answered = await first_phone.wait()
        assert answered.ok, answered.describe()
        connected = await events.wait_for(lambda event: event.get("Queue") == queue_name)
    assert connected.get("Interface") == f"PJSIP/{first['sip_username']}", connected
    (invite,) = answered.received("INVITE")
    assert CALLER in (header(invite, "From") or ""), invite
    untouched = await backup_phone.stop()
    assert untouched.received("INVITE") == [], untouched.describe()


def closed_now(closure: str) -> dict[str, Any]:
    """A schedule closed at this moment: no opening hours, or open always but a holiday today."""
    if closure == "no-opening-hours":
        return {"name": "never", "weekly": []}
    today = datetime.now(ZoneInfo(TENANT_TIMEZONE)).date()
    # Tomorrow too: the call may be placed after midnight.
    holidays = [today.isoformat(), (today + timedelta(days=1)).isoformat()]
    return {"name": "holiday", "weekly": ALWAYS_OPEN, "holidays": holidays}


async def closed_number(
    client: httpx.AsyncClient,
    world: TenantWorld,
    closure: str,
    open_destination: dict[str, Any],
    closed_destination: dict[str, Any],
) -> dict[str, Any]:
    """A new number whose route's schedule is closed now (``closed_now``): its calls go to
    ``closed_destination``."""
    closed = await created(
        await client.post(
            "/api/v1/schedules", headers=world.admin.headers, json=closed_now(closure)
        )
    )
    number = await new_number(client, world)
    await route_number(
        client,
        world,
        number,
        open_destination,
        schedule_id=closed["id"],
        closed_destination=closed_destination,
    )
    return number


@pytest.mark.parametrize("closure", ["no-opening-hours", "holiday-today"])
async def test_a_closed_number_takes_a_voicemail_message(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    closure: str,
) -> None:
    world = await make_world(client, sessions)
    admin = world.admin.headers
    # Open, the number would queue the caller for ever: nobody is in this queue.
    queue = await created(await client.post("/api/v1/queues", headers=admin, json={"name": "q"}))
    box = await new_voicemail_box(client, world)
    number = await closed_number(
        client,
        world,
        closure,
        {"type": "queue", "id": queue["id"]},
        {"type": "voicemail", "id": box["id"]},
    )
    await new_trunk(client, world, CARRIER_IP)
    await applier.settled()

    async with ami_events(pbx, "QueueCallerJoin") as events:
        message = await leave_message(pbx, sipp, asterisk, world, box, number["e164"])
    assert CALLER in message.read_text()
    queued = [
        event for event in events.seen if event.get("Queue") == f"t{world.tenant_id}-q{queue['id']}"
    ]
    assert queued == [], "a closed number queued its caller"


# ---- 4. queue overflow -----------------------------------------------------------------------


async def test_a_queue_nobody_answers_overflows_to_voicemail(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    box = await new_voicemail_box(client, world, "810")
    queue = await created(
        await client.post(
            "/api/v1/queues",
            headers=world.admin.headers,
            json={
                "name": "support",
                "max_wait": 3,
                "fallback": {"type": "voicemail", "id": box["id"]},
            },
        )
    )
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "queue", "id": queue["id"]})
    await new_trunk(client, world, CARRIER_IP)
    await applier.settled()

    queue_name = f"t{world.tenant_id}-q{queue['id']}"
    async with ami_events(pbx, "QueueCallerJoin", "QueueCallerLeave") as events:
        message = await leave_message(pbx, sipp, asterisk, world, box, number["e164"])
        # The caller waited in the queue, and left it when max_wait was over.
        await events.wait_for(lambda event: event.name == "QueueCallerJoin")
        left = await events.wait_for(lambda event: event.name == "QueueCallerLeave")
    assert left.get("Queue") == queue_name, left
    assert CALLER in message.read_text()


# ---- 5. voicemail ----------------------------------------------------------------------------


async def test_a_caller_leaves_a_voicemail_message(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    box = await new_voicemail_box(client, world, "820")
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "voicemail", "id": box["id"]})
    await new_trunk(client, world, CARRIER_IP)
    await applier.settled()

    message = await leave_message(pbx, sipp, asterisk, world, box, number["e164"])
    text = message.read_text()
    assert "origmailbox=820" in text, text
    assert f"callerid={CALLER}" in text, text
    # More than a bare WAV header: the caller's voice was recorded.
    assert message.with_suffix(".wav").stat().st_size > 8000


# ---- 6. outbound -----------------------------------------------------------------------------


async def outbound_setup(
    client: httpx.AsyncClient,
    world: TenantWorld,
    sipp: SippPool,
    *,
    owner: int | None = None,
    carrier_ip: str = CARRIER_UAS_IP,
    **route: Any,
) -> tuple[dict[str, Any], dict[str, Any], Sipp]:
    """A device (of ``owner``, else the tenant's agent), the tenant's caller-ID number, and the
    carrier's UAS its route's trunk dials; ``route`` adds fields to the outbound route."""
    device = await new_device(client, world, "201", owner)
    number = await new_number(client, world)
    carrier = sipp.uas("uas_answer.xml", ip=carrier_ip)
    trunk = await new_trunk(client, world, carrier_ip, carrier.port)
    await created(
        await client.post(
            "/api/v1/outbound-routes",
            headers=world.admin.headers,
            json={
                "name": "france",
                "trunk_id": trunk["id"],
                "caller_id_number_id": number["id"],
                "allowed_countries": ["FR"],
                **route,
            },
        )
    )
    return device, number, carrier


async def phone_call(
    sipp: SippPool, device: dict[str, Any], number: str, scenario: str = "uac_call.xml"
) -> SippResult:
    """The device's phone dials ``number`` (authenticated as the device); the call went as
    ``scenario`` says (answered, or hung up on by Asterisk)."""
    call = await sipp.uac(
        scenario,
        ip=PHONES_IP,
        service=number,
        auth=(device["sip_username"], device["password"]),
        keys={"caller": device["sip_username"]},
    ).run()
    assert call.ok, call.describe()
    return call


async def outbound_invite(sipp: SippPool, device: dict[str, Any], carrier: Sipp) -> str:
    """The device calls +33145678901 and the carrier answers: the INVITE the carrier got."""
    await carrier.start()
    await phone_call(sipp, device, "+33145678901")
    answered = await carrier.wait()
    assert answered.ok, answered.describe()
    (invite,) = answered.received("INVITE")
    return invite


async def test_an_outbound_call_leaves_with_the_tenants_caller_id(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    device, number, carrier = await outbound_setup(client, world, sipp)
    await applier.settled()
    invite = await outbound_invite(sipp, device, carrier)
    assert invite.startswith("INVITE sip:+33145678901@"), invite
    assert f"<sip:{number['e164']}@" in (header(invite, "From") or ""), invite


async def suspend(client: httpx.AsyncClient, world: TenantWorld, applier: ConfigApplier) -> None:
    """The operator suspends the tenant (non-payment), and Asterisk has the change."""
    suspended = await client.patch(
        f"/api/v1/tenants/{world.tenant_id}",
        headers=world.operator.headers,
        json={"status": "suspended"},
    )
    assert suspended.status_code == 200, suspended.text
    await applier.settled()


async def test_a_suspended_tenant_hears_why_and_its_call_never_reaches_the_carrier(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    device, _, carrier = await outbound_setup(client, world, sipp)
    await suspend(client, world, applier)
    await carrier.start()

    call = await phone_call(sipp, device, "+33145678901", "uac_call_hungup.xml")
    (bye,) = call.received("BYE")
    assert header(bye, "Reason") == "Q.850;cause=21", bye  # the refusal after the announcement
    untouched = await carrier.stop()
    assert untouched.received("INVITE") == [], untouched.describe()


# ---- 7. changes are live ---------------------------------------------------------------------


async def test_an_ivr_digit_added_through_the_api_routes_the_next_call(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    device = await new_device(client, world, "201")
    menu = await created(
        await client.post("/api/v1/ivrs", headers=world.admin.headers, json={"name": "main"})
    )
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "ivr", "id": menu["id"]})
    await new_trunk(client, world, CARRIER_IP)
    await applier.settled()
    phone = await registered_phone(pbx, sipp, device, "uas_answer_hangup.xml")
    before, after = "+33612340001", "+33612340002"

    # No digit yet: 1 is invalid, and the menu hangs up.
    invalid = await sipp.uac(
        "carrier_press_1.xml", ip=CARRIER_IP, service=number["e164"], keys={"caller": before}
    ).run()
    assert invalid.ok, invalid.describe()

    changed = await client.patch(
        f"/api/v1/ivrs/{menu['id']}",
        headers=world.admin.headers,
        json={"options": {"1": {"type": "extension", "id": device["id"]}}},
    )
    assert changed.status_code == 200, changed.text
    await applier.settled()

    call = await sipp.uac(
        "carrier_press_1.xml", ip=CARRIER_IP, service=number["e164"], keys={"caller": after}
    ).run()
    assert call.ok, call.describe()
    answered = await phone.wait()
    assert answered.ok, answered.describe()
    (invite,) = answered.received("INVITE")
    assert after in (header(invite, "From") or ""), invite


# ---- a number nobody holds -------------------------------------------------------------------


async def test_a_carrier_call_to_a_number_nobody_holds_is_refused_with_404(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    """[graam-from-trunk] sends each number to the context of its last three digits; a number
    no tenant's context holds is answered 404 (cause 1, unallocated), in both forms."""
    world = await make_world(client, sessions)
    await new_trunk(client, world, CARRIER_IP)
    await applier.settled()
    # Numbers of a range kept for fiction (+33 1 99 00 5x xx): no tenant holds them.
    for number in (
        f"+33199005{secrets.randbelow(1_000):03d}",
        f"33199005{secrets.randbelow(1_000):03d}",
    ):
        async with ami_events(pbx, "Hangup") as events:
            call = await sipp.uac(
                "carrier_unknown_number.xml", ip=CARRIER_IP, service=number, keys={"caller": CALLER}
            ).run()
            assert call.ok, call.describe()
            hangup = await events.wait_for(partial(_exten_is, number))
        assert hangup.get("Cause") == "1", hangup


def _exten_is(exten: str, event: Message) -> bool:
    return event.get("Exten") == exten
