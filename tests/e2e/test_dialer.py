"""The campaign dialer on real calls: Asterisk, a sipp carrier whose far end answers, is busy
or rings, and a sipp agent who takes the answered calls.

These tests live with the call flows (not under tests/integration) because they need the
tenant's generated dialplan: the session's one config applier is the e2e control plane's.
Rows a campaign needs are written straight to the database (the API's checks are tested by
the campaigns' own tests); the dialer of the session's control plane places the calls.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami import actions as ami_actions
from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.campaigns import placing
from graam_pbx.campaigns.models import (
    Campaign,
    CampaignAttempt,
    CampaignContact,
    Contact,
    ContactList,
)
from graam_pbx.campaigns.placing import CallRefused
from graam_pbx.campaigns.worker import DialerWorker
from graam_pbx.cdr.models import Cdr
from tests.conftest import Asterisk, RunningApp
from tests.e2e.calls_api import call_of, control, live_call_of
from tests.e2e.sipp import Sipp, SippPool, SippResult, header
from tests.e2e.test_agent_login import (
    Phone,
    configured,
    new_tenant,
    register,
    session_url,
)
from tests.e2e.test_call_control import another_agent, channels_on
from tests.e2e.test_calls import created, new_number, new_trunk, registered_phone
from tests.factories import TenantWorld, unique
from tests.waiting import until

Sessions = async_sessionmaker[AsyncSession]

CARRIER_IP = "127.0.0.83"  # the far end of this module's campaign calls; no other test's
# A Wednesday morning in Paris, no holiday: the law allows the calls whenever the test runs.
LEGAL_INSTANT = datetime(2026, 3, 4, 11, 0, tzinfo=ZoneInfo("Europe/Paris"))
_INVITE = re.compile(r"^INVITE sip:(\+[0-9]+)@", re.MULTILINE)


@dataclass
class DialerTenant:
    world: TenantWorld
    queue_id: int
    agent: Phone
    caller_id_number_id: int
    caller_id: str
    carrier: Sipp


def dialer(pbx: RunningApp) -> DialerWorker:
    worker = pbx.runtime.dialer
    assert worker is not None
    return worker


@contextmanager
def legal_hours(worker: DialerWorker) -> Iterator[None]:
    """The law judges the test's calls at LEGAL_INSTANT (advancing with the real clock)."""
    started = datetime.now(UTC)
    previous = worker.law_clock
    worker.law_clock = lambda: LEGAL_INSTANT + (datetime.now(UTC) - started)
    try:
        yield
    finally:
        worker.law_clock = previous


async def dialer_tenant(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    tmp_path: Path,
    *,
    carrier_ip: str = CARRIER_IP,
) -> DialerTenant:
    """A tenant with one agent in one queue, a caller-ID number, and an outbound route to
    the far-end carrier (started on ``carrier_ip``, which answers ``person`` numbers); live in
    Asterisk."""
    world, made = await new_tenant(pbx, client, sessions, licences=1, agents=1)
    number = await new_number(client, world)
    carrier = Sipp("dialer_far_end.xml", workdir=tmp_path, ip=carrier_ip, timeout=240)
    sipp.started.append(carrier)
    await carrier.start()
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
            },
        )
    )
    await configured(applier, {world.tenant_id})
    return DialerTenant(world, made.queue_id, made.agents[0], number["id"], number["e164"], carrier)


async def logged_in_agent(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    setup: DialerTenant,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
    phone: str = "queue_agent_answers.xml",
) -> Sipp:
    """The agent's phone registered (by default it answers every call and hangs up a second
    later) and the agent logged in: a member of the campaign's queue in Asterisk."""
    registered = await register(tmp_path, asterisk, sipp, [setup.agent], phone)
    login = await client.post(
        session_url(setup.agent.user_id), headers=setup.world.supervisor.headers
    )
    assert login.status_code == 201, login.text
    agents = pbx.runtime.agents
    assert agents is not None
    await agents.settled()
    return registered


def contact_number(kind: str) -> str:
    """A French mobile number the far end treats as ``kind``: person, busy, silent or slow (a
    person who answers after 0.5 s of ringing)."""
    digit = {"person": "1", "busy": "2", "silent": "3", "slow": "4"}[kind]
    return f"+336{digit}{uuid.uuid4().int % 10**7:07d}"


async def new_campaign(
    sessions: Sessions,
    setup: DialerTenant,
    numbers: list[str],
    *,
    status: str = "running",
    mode: str = "progressive",
    retries: dict[str, Any] | None = None,
    lease_owner: str | None = None,
) -> tuple[int, dict[str, int]]:
    """A campaign calling ``numbers`` (its contacts made pending); its id and the contact id
    of each number."""
    tenant_id = setup.world.tenant_id
    async with sessions() as session, session.begin():
        contacts_list = ContactList(tenant_id=tenant_id, name=unique("list"), default_region="FR")
        session.add(contacts_list)
        await session.flush()
        contacts = [
            Contact(
                tenant_id=tenant_id,
                list_id=contacts_list.id,
                number=number,
                region="FR",
                time_zones=["Europe/Paris"],
                fields={},
            )
            for number in numbers
        ]
        session.add_all(contacts)
        campaign = Campaign(
            tenant_id=tenant_id,
            name=unique("campaign"),
            list_id=contacts_list.id,
            queue_id=setup.queue_id,
            caller_id_number_id=setup.caller_id_number_id,
            mode=mode,
            status=status,
            audience="businesses",
            retries=retries or {},
            ring_seconds=15,
            max_channels=2,
            started_at=datetime.now(UTC),
            lease_owner=lease_owner,
            lease_until=datetime.now(UTC) + timedelta(minutes=5) if lease_owner else None,
        )
        session.add(campaign)
        await session.flush()
        session.add_all(
            CampaignContact(tenant_id=tenant_id, campaign_id=campaign.id, contact_id=c.id)
            for c in contacts
        )
    return campaign.id, {c.number: c.id for c in contacts}


async def campaign_status(sessions: Sessions, campaign_id: int) -> str:
    async with sessions() as session:
        status = await session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    assert status is not None
    return status


async def attempts_of(sessions: Sessions, campaign_id: int) -> list[CampaignAttempt]:
    async with sessions() as session:
        rows = await session.scalars(
            select(CampaignAttempt)
            .where(CampaignAttempt.campaign_id == campaign_id)
            .order_by(CampaignAttempt.id)
        )
        return list(rows)


async def contacts_of(sessions: Sessions, campaign_id: int) -> dict[int, CampaignContact]:
    async with sessions() as session:
        rows = await session.scalars(
            select(CampaignContact).where(CampaignContact.campaign_id == campaign_id)
        )
        return {row.contact_id: row for row in rows}


def invites_by_number(result: SippResult) -> Counter[str]:
    """How many INVITEs (not retransmissions: one per Call-ID) the far end got per number."""
    calls: dict[str, str] = {}
    for message in result.received("INVITE"):
        number = _INVITE.search(message)
        call_id = re.search(r"^Call-ID:\s*(\S+)", message, re.MULTILINE | re.IGNORECASE)
        assert number and call_id, message
        calls[call_id.group(1)] = number.group(1)
    return Counter(calls.values())


async def test_a_progressive_campaign_reaches_the_agent_retries_busy_and_finishes(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    setup = await dialer_tenant(pbx, client, sessions, applier, sipp, tmp_path)
    world = setup.world
    phone = await logged_in_agent(pbx, client, setup, asterisk, sipp, tmp_path)

    people = [contact_number("person"), contact_number("person")]
    busy = contact_number("busy")
    worker = dialer(pbx)
    with legal_hours(worker):
        campaign_id, contact_ids = await new_campaign(
            sessions,
            setup,
            [*people, busy],
            retries={"busy": {"delay_seconds": 0, "max": 1}},
        )
        worker.request()

        async def finished() -> bool:
            return await campaign_status(sessions, campaign_id) == "finished"

        await until(finished, "the campaign's end", timeout=120)

    attempts = await attempts_of(sessions, campaign_id)
    by_number = Counter(a.number for a in attempts)
    assert by_number == {people[0]: 1, people[1]: 1, busy: 2}, attempts
    for attempt in attempts:
        if attempt.number in people:
            assert attempt.outcome == "answered", attempt.__dict__
            assert attempt.connected_at is not None and attempt.answered_at is not None
            assert attempt.agent_user_id == setup.agent.user_id
            assert attempt.talk_seconds is not None
            assert attempt.dial_status == "ANSWER"
        else:
            assert attempt.outcome == "busy", attempt.__dict__
            assert attempt.dial_status == "BUSY"
    contacts = await contacts_of(sessions, campaign_id)
    for number in people:
        contact = contacts[contact_ids[number]]
        assert (contact.state, contact.attempts, contact.last_outcome) == ("done", 1, "answered")
    retried = contacts[contact_ids[busy]]
    assert (retried.state, retried.attempts, retried.last_outcome) == ("done", 2, "busy")
    assert retried.retries_used == {"busy": 1}

    # The carrier got exactly one call per attempt, from the campaign's caller ID; the
    # agent's phone rang with each person's number.
    far_end = await setup.carrier.stop()
    assert invites_by_number(far_end) == by_number, far_end.describe()
    for invite in far_end.received("INVITE"):
        assert f"<sip:{setup.caller_id}@" in (header(invite, "From") or ""), invite
    agent_side = await phone.stop()
    shown = sorted(
        re.sub(r".*<sip:(\+[0-9]+)@.*", r"\1", header(invite, "From") or "")
        for invite in agent_side.received("INVITE")
    )
    assert shown == sorted(people), agent_side.describe()

    # Each attempt leaves one outbound CDR, to the contact's number from the campaign's
    # number; each answered one is billed once (what runs after the contact's leg ends leaves
    # no CDR of its own).
    expected = {(people[0], True): 1, (people[1], True): 1, (busy, False): 2}

    async def billed() -> bool:
        async with sessions() as session:
            rows = await session.execute(
                select(Cdr.to_number, Cdr.billable, Cdr.src, func.count())
                .where(Cdr.tenant_id == world.tenant_id, Cdr.direction == "outbound")
                .group_by(Cdr.to_number, Cdr.billable, Cdr.src)
            )
            found = {(n, b): c for n, b, src, c in rows.all() if src == setup.caller_id}
            return found == expected

    await until(billed, "one outbound CDR per attempt, the answered ones billable", timeout=30)


async def test_open_attempts_after_a_restart_end_lost_or_are_followed_to_their_end(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    setup = await dialer_tenant(pbx, client, sessions, applier, sipp, tmp_path)
    worker = dialer(pbx)
    never_sent, ringing = contact_number("person"), contact_number("silent")
    # As if the control plane died: its dialer is gone while one attempt was committed but
    # never sent, and another was ringing in Asterisk.
    await worker.stop()
    try:
        campaign_id, contact_ids = await new_campaign(
            sessions, setup, [never_sent, ringing], status="paused", lease_owner=worker.node
        )
        tenant = setup.world.tenant_id
        placed_at = datetime.now(UTC) - timedelta(minutes=1)
        async with sessions() as session, session.begin():
            for number in (never_sent, ringing):
                session.add(
                    CampaignAttempt(
                        tenant_id=tenant,
                        campaign_id=campaign_id,
                        contact_id=contact_ids[number],
                        number=number,
                        channel_id=f"cmp-{uuid.uuid4().hex}",
                        mode="progressive",
                        placed_at=placed_at,
                    )
                )
            await session.execute(
                update(CampaignContact)
                .where(CampaignContact.campaign_id == campaign_id)
                .values(state="dialing")
            )
        call = {a.number: a for a in await attempts_of(sessions, campaign_id)}[ringing]
        await ami_actions.originate(
            pbx.runtime.ami,
            f"Local/{ringing}@t{tenant}-campaign-dial/n",
            channel_id=call.channel_id,
            context=f"t{tenant}-campaign-answered",
            exten="s",
            variables={
                "GRAAM_ATTEMPT": str(call.id),
                "GRAAM_CAMPAIGN": str(campaign_id),
                "GRAAM_CAMPAIGN_RING": "15",
                "GRAAM_CAMPAIGN_CID": "+33162000000",
            },
            timeout_ms=25_000,
            account=f"t{tenant}",
        )

        async def ringing_now() -> bool:
            shown = await pbx.runtime.ami.command("core show channels concise")
            return call.channel_id in shown

        await until(ringing_now, "the ringing call's channel", timeout=10)
    finally:
        await worker.start()

    async def both_ended() -> bool:
        return all(a.ended_at is not None for a in await attempts_of(sessions, campaign_id))

    await until(both_ended, "both open attempts ended", timeout=60)
    ended = {a.number: a for a in await attempts_of(sessions, campaign_id)}
    assert ended[never_sent].outcome == "lost", ended[never_sent].__dict__
    # Still ringing when the dialer came back: followed to its real end, not lost.
    assert ended[ringing].outcome == "no_answer", ended[ringing].__dict__
    assert ended[ringing].dial_status == "NOANSWER"
    far_end = await setup.carrier.stop()
    assert invites_by_number(far_end) == {ringing: 1}, far_end.describe()
    contacts = await contacts_of(sessions, campaign_id)
    assert {c.state for c in contacts.values()} == {"done"}


async def test_no_call_is_claimed_for_a_campaign_the_dialer_no_longer_holds_nor_beyond_licences(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    # A dialer decides on figures read before its placing transaction: its lease may have
    # passed to another dialer meanwhile (a tick longer than the lease), a user may have paused
    # the campaign, another dialer may have filled the tenant's licences with another
    # campaign's calls. The placing transaction checks each again under the tenant's lock.
    setup = await dialer_tenant(pbx, client, sessions, applier, sipp, tmp_path)
    tenant = setup.world.tenant_id  # one licence
    node = f"node-{uuid.uuid4().hex[:8]}"  # not the session's dialer: it leaves these alone
    numbers = [contact_number("person") for _ in range(3)]
    campaign_id, _ = await new_campaign(sessions, setup, numbers, lease_owner=node)
    async with sessions() as session:
        (plan,) = await placing.load_plans(session, [campaign_id])

    async def claimed(by: str, calls_per_licence: int | None = None) -> int:
        async with sessions() as session:
            placements = await placing.claim_calls(
                session,
                plan,
                2,
                datetime.now(UTC),
                law_now=LEGAL_INSTANT,
                node=by,
                calls_per_licence=calls_per_licence,
            )
            await session.rollback()  # nothing is sent: the rows are not kept
        return len(placements)

    assert await claimed(node) == 2
    assert await claimed("another-node") == 0
    assert await claimed(node, calls_per_licence=1) == 1
    # Another campaign of the tenant, dialled by another dialer, has a call in progress: the
    # tenant's one licence allows no more.
    other_id, other_contacts = await new_campaign(
        sessions, setup, [contact_number("person")], lease_owner="another-node"
    )
    async with sessions() as session, session.begin():
        ((number, contact_id),) = other_contacts.items()
        session.add(
            CampaignAttempt(
                tenant_id=tenant,
                campaign_id=other_id,
                contact_id=contact_id,
                number=number,
                channel_id=f"cmp-{uuid.uuid4().hex}",
                mode="progressive",
                placed_at=datetime.now(UTC),
            )
        )
    assert await claimed(node, calls_per_licence=1) == 0
    assert await claimed(node, calls_per_licence=2) == 1
    async with sessions() as session, session.begin():
        await session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(status="paused")
        )
    assert await claimed(node) == 0
    async with sessions() as session, session.begin():
        await session.execute(
            update(Campaign)
            .where(Campaign.id.in_([campaign_id, other_id]))
            .values(status="stopped", lease_owner=None, lease_until=None)
        )


async def test_open_attempts_of_a_stopped_campaign_whose_dialer_is_gone_end_lost(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    # Its dialer died (a redeploy under a new host name) after the campaign was stopped: no
    # dialer will ever lease it again, yet its open attempt must end and its contact move on.
    setup = await dialer_tenant(pbx, client, sessions, applier, sipp, tmp_path)
    number = contact_number("silent")
    campaign_id, contact_ids = await new_campaign(sessions, setup, [number], status="stopped")
    async with sessions() as session, session.begin():
        await session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(
                lease_owner=f"gone-{uuid.uuid4().hex[:8]}",
                lease_until=datetime.now(UTC) - timedelta(minutes=1),
            )
        )
        session.add(
            CampaignAttempt(
                tenant_id=setup.world.tenant_id,
                campaign_id=campaign_id,
                contact_id=contact_ids[number],
                number=number,
                channel_id=f"cmp-{uuid.uuid4().hex}",
                mode="progressive",
                placed_at=datetime.now(UTC) - timedelta(minutes=2),
            )
        )
        await session.execute(
            update(CampaignContact)
            .where(CampaignContact.campaign_id == campaign_id)
            .values(state="dialing")
        )
    dialer(pbx).request()

    async def ended() -> bool:
        return all(a.ended_at is not None for a in await attempts_of(sessions, campaign_id))

    # The periodic reconciliation (every 30 s) finds it, then confirms it 3 s later.
    await until(ended, "the orphaned attempt's end", timeout=90)
    (attempt,) = await attempts_of(sessions, campaign_id)
    assert attempt.outcome == "lost", attempt.__dict__
    contacts = await contacts_of(sessions, campaign_id)
    assert contacts[contact_ids[number]].state == "done"


async def test_a_preview_call_rings_the_agent_then_the_contact_and_is_billed_once(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    setup = await dialer_tenant(pbx, client, sessions, applier, sipp, tmp_path)
    await logged_in_agent(pbx, client, setup, asterisk, sipp, tmp_path)
    # The person rings 0.5 s before answering (the agent hangs up 1 s after its own answer):
    # the agent's leg, answered before it dials, is billed from the person's answer.
    person = contact_number("slow")
    campaign_id, contact_ids = await new_campaign(sessions, setup, [person], mode="preview")
    worker = dialer(pbx)
    with legal_hours(worker):
        attempt_id = await worker.dial_preview(
            setup.world.tenant_id, campaign_id, contact_ids[person], setup.agent.user_id
        )

        async def ended() -> bool:
            return all(a.ended_at is not None for a in await attempts_of(sessions, campaign_id))

        await until(ended, "the preview call's end", timeout=60)
    (attempt,) = await attempts_of(sessions, campaign_id)
    assert attempt.id == attempt_id
    assert (attempt.outcome, attempt.dial_status, attempt.mode) == ("answered", "ANSWER", "preview")
    assert attempt.agent_user_id == setup.agent.user_id
    assert attempt.connected_at is not None and attempt.talk_seconds is not None
    contact = (await contacts_of(sessions, campaign_id))[contact_ids[person]]
    assert (contact.state, contact.attempts) == ("done", 1)
    far_end = await setup.carrier.stop()
    assert invites_by_number(far_end) == {person: 1}, far_end.describe()

    async def billed_once() -> bool:
        async with sessions() as session:
            rows = await session.execute(
                select(Cdr.to_number, Cdr.billable, Cdr.src).where(
                    Cdr.tenant_id == setup.world.tenant_id, Cdr.direction == "outbound"
                )
            )
            return rows.all() == [(person, True, setup.caller_id)]

    await until(billed_once, "the preview call's one billable CDR", timeout=30)
    async with sessions() as session:
        leg = await session.scalar(
            select(Cdr).where(Cdr.tenant_id == setup.world.tenant_id, Cdr.direction == "outbound")
        )
    assert leg is not None and leg.answered_at is not None
    assert leg.answered_at - leg.started_at >= timedelta(seconds=0.5), leg.__dict__
    assert leg.billsec == Decimal(f"{(leg.ended_at - leg.answered_at).total_seconds():.6f}")

    # Asked again, the contact is done: the call is refused, nothing is placed.
    with pytest.raises(CallRefused):
        await worker.dial_preview(
            setup.world.tenant_id, campaign_id, contact_ids[person], setup.agent.user_id
        )
    assert len(await attempts_of(sessions, campaign_id)) == 1


async def test_an_answered_call_no_agent_takes_in_time_is_abandoned(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    setup = await dialer_tenant(pbx, client, sessions, applier, sipp, tmp_path)
    tenant = setup.world.tenant_id
    person = contact_number("person")
    # Nobody logged in to the queue: the dialer itself would not call (progressive), so the
    # test places the attempt as the dialer does, and the dialer follows it.
    campaign_id, contact_ids = await new_campaign(sessions, setup, [person], status="paused")
    async with sessions() as session, session.begin():
        attempt = CampaignAttempt(
            tenant_id=tenant,
            campaign_id=campaign_id,
            contact_id=contact_ids[person],
            number=person,
            channel_id=f"cmp-{uuid.uuid4().hex}",
            mode="progressive",
            placed_at=datetime.now(UTC),
        )
        session.add(attempt)
        await session.execute(
            update(CampaignContact)
            .where(CampaignContact.campaign_id == campaign_id)
            .values(state="dialing")
        )
    await ami_actions.originate(
        pbx.runtime.ami,
        f"Local/{person}@t{tenant}-campaign-dial/n",
        channel_id=attempt.channel_id,
        context=f"t{tenant}-campaign-answered",
        exten="s",
        variables={
            "GRAAM_ATTEMPT": str(attempt.id),
            "GRAAM_CAMPAIGN": str(campaign_id),
            "GRAAM_CAMPAIGN_RING": "15",
            "GRAAM_CAMPAIGN_CID": "+33162000000",
            "GRAAM_CAMPAIGN_QUEUE": str(setup.queue_id),
            "GRAAM_CAMPAIGN_WAIT": "2",
        },
        timeout_ms=25_000,
        account=f"t{tenant}",
    )

    async def ended() -> bool:
        return all(a.ended_at is not None for a in await attempts_of(sessions, campaign_id))

    await until(ended, "the abandoned call's end", timeout=60)
    (done,) = await attempts_of(sessions, campaign_id)
    assert (done.outcome, done.connected_at, done.agent_user_id) == ("abandoned", None, None)
    assert done.answered_at is not None
    contact = (await contacts_of(sessions, campaign_id))[contact_ids[person]]
    assert (contact.state, contact.last_outcome) == ("done", "abandoned")


async def test_a_preview_call_the_agent_refuses_fails_and_never_reaches_the_contact(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    setup = await dialer_tenant(pbx, client, sessions, applier, sipp, tmp_path)
    await logged_in_agent(
        pbx, client, setup, asterisk, sipp, tmp_path, phone="queue_agent_rejects.xml"
    )
    person = contact_number("person")
    campaign_id, contact_ids = await new_campaign(
        sessions,
        setup,
        [person],
        mode="preview",
        retries={"failed": {"delay_seconds": 60, "max": 1}},
    )
    worker = dialer(pbx)
    with legal_hours(worker):
        await worker.dial_preview(
            setup.world.tenant_id, campaign_id, contact_ids[person], setup.agent.user_id
        )

        async def ended() -> bool:
            return all(a.ended_at is not None for a in await attempts_of(sessions, campaign_id))

        await until(ended, "the refused preview call's end", timeout=30)
    (attempt,) = await attempts_of(sessions, campaign_id)
    assert (attempt.outcome, attempt.dial_status) == ("failed", "NOTSTARTED")
    contact = (await contacts_of(sessions, campaign_id))[contact_ids[person]]
    assert (contact.state, contact.retries_used) == ("pending", {"failed": 1})
    far_end = await setup.carrier.stop()
    assert invites_by_number(far_end) == {}, far_end.describe()


async def test_a_preview_calls_agent_consults_a_colleague_then_puts_the_person_through(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    setup = await dialer_tenant(pbx, client, sessions, applier, sipp, tmp_path)
    agent_phone = await logged_in_agent(
        pbx, client, setup, asterisk, sipp, tmp_path, phone="uas_answer.xml"
    )
    _, colleague = await another_agent(client, setup.world, "209")
    await applier.settled()
    colleague_phone = await registered_phone(pbx, sipp, colleague)
    person = contact_number("person")
    campaign_id, contact_ids = await new_campaign(sessions, setup, [person], mode="preview")
    worker = dialer(pbx)
    admin = setup.world.admin.headers
    with legal_hours(worker):
        await worker.dial_preview(
            setup.world.tenant_id, campaign_id, contact_ids[person], setup.agent.user_id
        )
        call = await live_call_of(client, admin, {"sip_username": setup.agent.sip_username})
        body = {"to": {"type": "extension", "extension": "209"}, "attended": True}
        started = await control(client, admin, call["id"], "transfer", body)
        assert started.status_code == 200, started.text
        (agent_channel,) = started.json()["channels"]

        async def agent_talks_to_the_colleague() -> bool:
            now = await call_of(client, admin, call["id"])
            return any(c["bridged"] and c["state"] == "Up" for c in channels_on(colleague, now))

        await until(agent_talks_to_the_colleague, "the agent put through to the colleague")
        await pbx.runtime.ami.action("Hangup", {"Channel": agent_channel})

        async def person_with_the_colleague() -> bool:
            now = await call_of(client, admin, call["id"])
            mine = f"PJSIP/{setup.agent.sip_username}-"
            return not any(c["name"].startswith(mine) for c in now["channels"]) and any(
                c["bridged"] for c in channels_on(colleague, now)
            )

        await until(person_with_the_colleague, "the person put through to the colleague")
        hung = await control(client, admin, call["id"], "hangup")
        assert hung.status_code == 200, hung.text
        for phone in (agent_phone, colleague_phone):
            ended = await phone.wait()
            assert ended.ok, ended.describe()

        async def ended() -> bool:
            return all(a.ended_at is not None for a in await attempts_of(sessions, campaign_id))

        await until(ended, "the preview call's end", timeout=60)
    (attempt,) = await attempts_of(sessions, campaign_id)
    assert (attempt.outcome, attempt.mode) == ("answered", "preview")
