"""Placing campaign calls: the contacts due, the law's verdict on each, the attempt rows, and
only after their commit the AMI ``Originate`` (once per attempt, never again).

``claim_calls`` and ``claim_preview`` run inside the caller's transaction and never commit;
``originate_attempt`` is called once that transaction has committed.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import phonenumbers
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.agents.models import AgentDevice, AgentSession
from graam_pbx.ami import (
    AmiActionError,
    AmiError,
    AmiInjectionError,
    AmiNotConnected,
)
from graam_pbx.ami import actions as ami_actions
from graam_pbx.ami.actions import ActionSender
from graam_pbx.asterisk.render import prompt_path
from graam_pbx.campaigns import blocklists, compliance
from graam_pbx.campaigns.law import (
    LAWS,
    RULE_DESTINATION_NOT_ALLOWED,
    RULE_OPPOSITION_LIST_STALE,
    RULE_TENANT_SUSPENDED,
    Window,
    law_for_region,
    windows_from_json,
)
from graam_pbx.campaigns.models import (
    CallRefusal,
    Campaign,
    CampaignAttempt,
    CampaignContact,
    CampaignMode,
    CampaignStatus,
    Contact,
    ContactState,
    Disposition,
)
from graam_pbx.errors import Conflict, NotFound
from graam_pbx.numbers.models import PhoneNumber
from graam_pbx.prompts.models import Prompt
from graam_pbx.queues.models import Queue
from graam_pbx.routing.models import OutboundRoute, Trunk
from graam_pbx.tenants.models import Tenant, TenantStatus

log = logging.getLogger(__name__)

# Seconds Originate waits beyond the ring time: the dialplan's Dial() ends the ringing, this
# only catches a call that never started.
ORIGINATE_MARGIN_SECONDS = 10
# How long an agent's phone rings for a preview call before the attempt fails.
PREVIEW_AGENT_RING_SECONDS = 30
# A contact refused for a reason that may change (a suspended tenant, no route to its
# country) is looked at again after this long.
RECHECK_AFTER = timedelta(hours=1)
# The queue's wait for an agent after the answer: the law's 2 s, less the time answering-
# machine detection may take (AMD's total analysis time is capped at 1 s in the dialplan).
AMD_SECONDS = 1
# Contacts read per call wanted: some are refused by the law and the next ones take their turn.
CANDIDATES_PER_CALL = 3
# Key of the advisory lock that serialises a tenant's placements, so that the law's attempt
# count per number holds across the tenant's campaigns placed at the same moment.
_PLACING_LOCK = 0x6D70


class CallRefused(Conflict):
    """A preview call the law or the campaign's state forbids now."""

    error_id = "call-refused"


class AgentNotReady(Conflict):
    """The agent asking for a preview call has no live session with a device."""

    error_id = "agent-not-ready"


@dataclass(frozen=True, slots=True)
class CampaignPlan:
    """What the dialer needs of one campaign to place its calls."""

    id: int
    tenant_id: int
    mode: str
    queue_id: int
    caller_id: str
    audience: str
    require_consent: bool
    calling_hours: tuple[Window, ...]
    retries: dict[str, Any]
    ring_seconds: int
    max_channels: int
    amd_enabled: bool
    machine_action: str
    machine_prompt: str | None
    abandon_prompt: str | None
    abandon_target: float
    wrapup_seconds: int = 0  # the queue's wrap-up after each call

    @property
    def queue_name(self) -> str:
        return f"t{self.tenant_id}-q{self.queue_id}"


@dataclass(frozen=True, slots=True)
class Placement:
    """An attempt committed and not yet sent to Asterisk."""

    attempt_id: int
    campaign_id: int
    tenant_id: int
    contact_id: int
    number: str
    channel_id: str
    mode: str


@dataclass(frozen=True, slots=True)
class _Candidate:
    contact_id: int
    number: str
    region: str
    time_zones: tuple[str, ...]
    consent_at: datetime | None


async def load_plans(session: AsyncSession, campaign_ids: Collection[int]) -> list[CampaignPlan]:
    """The plans of ``campaign_ids`` (their caller ID and prompts resolved)."""
    if not campaign_ids:
        return []
    machine = Prompt.__table__.alias("machine_prompt")
    abandon = Prompt.__table__.alias("abandon_prompt")
    rows = (
        await session.execute(
            select(
                Campaign, PhoneNumber.e164, machine.c.sha256, abandon.c.sha256, Queue.wrapup_time
            )
            .join(PhoneNumber, PhoneNumber.id == Campaign.caller_id_number_id)
            .join(Queue, Queue.id == Campaign.queue_id)
            .outerjoin(machine, machine.c.id == Campaign.machine_prompt_id)
            .outerjoin(abandon, abandon.c.id == Campaign.abandon_prompt_id)
            .where(Campaign.id.in_(list(campaign_ids)))
            .order_by(Campaign.id)
        )
    ).all()
    plans = []
    for campaign, e164, machine_sha, abandon_sha, wrapup in rows:
        plans.append(
            CampaignPlan(
                id=campaign.id,
                tenant_id=campaign.tenant_id,
                mode=campaign.mode,
                queue_id=campaign.queue_id,
                caller_id=e164,
                audience=campaign.audience,
                require_consent=campaign.require_consent,
                calling_hours=windows_from_json(list(campaign.calling_hours or [])),
                retries=dict(campaign.retries or {}),
                ring_seconds=campaign.ring_seconds,
                max_channels=campaign.max_channels,
                amd_enabled=campaign.amd_enabled,
                machine_action=campaign.machine_action,
                machine_prompt=None
                if machine_sha is None or campaign.machine_prompt_id is None
                else prompt_path(campaign.tenant_id, campaign.machine_prompt_id, machine_sha),
                abandon_prompt=None
                if abandon_sha is None or campaign.abandon_prompt_id is None
                else prompt_path(campaign.tenant_id, campaign.abandon_prompt_id, abandon_sha),
                abandon_target=float(campaign.abandon_target),
                wrapup_seconds=int(wrapup or 0),
            )
        )
    return plans


async def allowed_calling_codes(session: AsyncSession, tenant_id: int) -> set[int]:
    """The country calling codes the tenant's outbound routes reach (as the dialplan's
    patterns do: a route whose trunk is enabled and whose caller ID the tenant holds)."""
    rows = await session.scalars(
        select(OutboundRoute.allowed_countries)
        .join(Trunk, Trunk.id == OutboundRoute.trunk_id)
        .join(PhoneNumber, PhoneNumber.id == OutboundRoute.caller_id_number_id)
        .where(
            OutboundRoute.tenant_id == tenant_id,
            Trunk.enabled.is_(True),
            PhoneNumber.tenant_id == tenant_id,
        )
    )
    codes: set[int] = set()
    for countries in rows:
        for country in countries:
            code = phonenumbers.country_code_for_region(country)
            if code:
                codes.add(code)
    return codes


def _calling_code(number: str) -> int:
    try:
        return int(phonenumbers.parse(number).country_code or 0)
    except phonenumbers.NumberParseException:
        return 0


def _attempts_period() -> timedelta:
    return max(law.attempts_period for law in LAWS.values())


async def _facts(
    session: AsyncSession, tenant_id: int, candidates: Sequence[_Candidate], now: datetime
) -> tuple[dict[str, compliance.ContactFacts], date | None, set[str]]:
    """The law's facts on each candidate, in a few queries; and the numbers in a call now."""
    numbers = [c.number for c in candidates]
    on_dnc, on_opposition = await blocklists.blocked_numbers(session, tenant_id, numbers)
    opposition_date = await blocklists.latest_opposition_date(session, tenant_id)
    since = now - _attempts_period()
    attempts: dict[str, list[datetime]] = defaultdict(list)
    open_numbers: set[str] = set()
    for number, placed_at, ended_at in await session.execute(
        select(CampaignAttempt.number, CampaignAttempt.placed_at, CampaignAttempt.ended_at).where(
            CampaignAttempt.tenant_id == tenant_id,
            CampaignAttempt.number.in_(numbers),
            CampaignAttempt.placed_at >= since,
        )
    ):
        attempts[number].append(placed_at)
        if ended_at is None:
            open_numbers.add(number)
    refused: dict[str, datetime] = {
        number: at
        for number, at in await session.execute(
            select(CampaignAttempt.number, func.max(CampaignAttempt.disposition_at))
            .join(Disposition, Disposition.id == CampaignAttempt.disposition_id)
            .where(
                CampaignAttempt.tenant_id == tenant_id,
                CampaignAttempt.number.in_(numbers),
                Disposition.refusal.is_(True),
            )
            .group_by(CampaignAttempt.number)
        )
        if at is not None
    }
    facts = {
        c.number: compliance.ContactFacts(
            number=c.number,
            region=c.region,
            time_zones=c.time_zones,
            on_do_not_call=c.number in on_dnc,
            on_opposition_list=c.number in on_opposition,
            attempts=tuple(sorted(attempts.get(c.number, ()))),
            refused_at=refused.get(c.number),
            consent_at=c.consent_at,
        )
        for c in candidates
    }
    return facts, opposition_date, open_numbers


async def _lock_tenant(session: AsyncSession, tenant_id: int) -> None:
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:key, CAST(:tenant AS integer))"),
        {"key": _PLACING_LOCK, "tenant": tenant_id},
    )


def _refuse(
    session: AsyncSession,
    plan: CampaignPlan,
    link: CampaignContact,
    number: str,
    rule: str,
    until: datetime | None,
    now: datetime,
) -> None:
    session.add(
        CallRefusal(
            tenant_id=plan.tenant_id,
            campaign_id=plan.id,
            contact_id=link.contact_id,
            number=number,
            rule=rule,
            at=now,
            until=until,
        )
    )
    link.last_rule = rule
    link.reserved_by = None
    link.updated_at = now
    if until is None:
        link.state = ContactState.BLOCKED.value
        link.next_attempt_at = None
    else:
        link.next_attempt_at = until


def new_channel_id() -> str:
    """An attempt's channel id (unique: it also names one agent's click, remote_preview.py)."""
    return f"cmp-{uuid.uuid4().hex}"  # outcomes.CHANNEL_PREFIX


def _attempt(
    session: AsyncSession,
    plan: CampaignPlan,
    link: CampaignContact,
    number: str,
    now: datetime,
    *,
    channel_id: str | None = None,
) -> CampaignAttempt:
    attempt = CampaignAttempt(
        tenant_id=plan.tenant_id,
        campaign_id=plan.id,
        contact_id=link.contact_id,
        number=number,
        channel_id=channel_id or new_channel_id(),
        mode=plan.mode,
        placed_at=now,
    )
    session.add(attempt)
    link.state = ContactState.DIALING.value
    link.last_rule = None
    link.reserved_by = None
    link.updated_at = now
    return attempt


async def _verdicts(
    session: AsyncSession,
    plan: CampaignPlan,
    rows: Sequence[tuple[CampaignContact, _Candidate]],
    now: datetime,
    wanted: int,
    law_now: datetime,
) -> list[tuple[CampaignContact, _Candidate]]:
    """Refuses (and records) what the law forbids at ``law_now``; returns up to ``wanted``
    callable rows."""
    tenant = await session.get(Tenant, plan.tenant_id)
    suspended = tenant is None or tenant.status == TenantStatus.SUSPENDED.value
    codes = await allowed_calling_codes(session, plan.tenant_id)
    facts, opposition_date, open_numbers = await _facts(
        session, plan.tenant_id, [c for _, c in rows], now
    )
    rules = compliance.CampaignRules(
        audience=plan.audience,
        require_consent=plan.require_consent,
        calling_hours=plan.calling_hours,
        opposition_list_date=opposition_date,
    )
    allowed: list[tuple[CampaignContact, _Candidate]] = []
    until: datetime | None
    for link, candidate in rows:
        if len(allowed) >= wanted:
            break
        if candidate.number in open_numbers:
            continue  # in a call from another of the tenant's campaigns: its turn comes later
        if suspended:
            until = now + RECHECK_AFTER
            _refuse(session, plan, link, candidate.number, RULE_TENANT_SUSPENDED, until, now)
            continue
        if _calling_code(candidate.number) not in codes:
            until = now + RECHECK_AFTER
            rule = RULE_DESTINATION_NOT_ALLOWED
            _refuse(session, plan, link, candidate.number, rule, until, now)
            continue
        verdict = compliance.check_call(facts[candidate.number], rules, law_now)
        if not verdict.allowed:
            rule = verdict.rule or "refused"
            until = verdict.until
            if rule == RULE_OPPOSITION_LIST_STALE and until is None:
                # The tenant's next check of the opposition list lifts it: not final.
                until = now + RECHECK_AFTER
            _refuse(session, plan, link, candidate.number, rule, until, now)
            continue
        allowed.append((link, candidate))
    return allowed


def _candidate(contact: Contact) -> _Candidate:
    return _Candidate(
        contact_id=contact.id,
        number=contact.number,
        region=contact.region,
        time_zones=tuple(contact.time_zones or ()),
        consent_at=contact.consent_at,
    )


async def _still_held(session: AsyncSession, campaign_id: int, node: str) -> bool:
    """The campaign is still running and leased by ``node``: its row is share-locked until
    the caller commits, so no other dialer takes the lease (nor a user pauses it) meanwhile."""
    held = await session.scalar(
        select(Campaign.id)
        .where(
            Campaign.id == campaign_id,
            Campaign.status == CampaignStatus.RUNNING.value,
            Campaign.lease_owner == node,
            Campaign.lease_until > func.clock_timestamp(),
        )
        .with_for_update(read=True)
    )
    return held is not None


async def tenant_room(session: AsyncSession, tenant_id: int, calls_per_licence: int) -> int:
    """Calls the tenant may still start: its licences times ``calls_per_licence`` less its
    campaigns' calls in progress (all its campaigns, whichever dialer placed them)."""
    licences = await session.scalar(select(Tenant.licences).where(Tenant.id == tenant_id))
    in_progress = await session.scalar(
        select(func.count())
        .select_from(CampaignAttempt)
        .join(Campaign, Campaign.id == CampaignAttempt.campaign_id)
        .where(Campaign.tenant_id == tenant_id, CampaignAttempt.ended_at.is_(None))
    )
    return max(0, int(licences or 0) * calls_per_licence - int(in_progress or 0))


async def claim_calls(
    session: AsyncSession,
    plan: CampaignPlan,
    count: int,
    now: datetime,
    *,
    law_now: datetime | None = None,
    node: str | None = None,
    calls_per_licence: int | None = None,
) -> list[Placement]:
    """Up to ``count`` attempts of ``plan`` written (contacts due, allowed by the law at
    ``law_now``, default ``now``), each refused contact recorded with its rule; the caller
    commits, then originates each. With ``node``, nothing unless the campaign is still running
    and leased by it; with ``calls_per_licence``, never beyond the tenant's licences."""
    if count <= 0:
        return []
    await _lock_tenant(session, plan.tenant_id)
    # Checked again under the tenant's lock: the pacer decided on figures read before it, and a
    # dialer whose tick outlived its lease, or a campaign paused meanwhile, must place nothing;
    # another dialer may be placing calls of the tenant's other campaigns at the same moment.
    if node is not None and not await _still_held(session, plan.id, node):
        return []
    if calls_per_licence is not None:
        count = min(count, await tenant_room(session, plan.tenant_id, calls_per_licence))
        if count <= 0:
            return []
    rows = (
        await session.execute(
            select(CampaignContact, Contact)
            .join(Contact, Contact.id == CampaignContact.contact_id)
            .where(
                CampaignContact.campaign_id == plan.id,
                CampaignContact.state == ContactState.PENDING.value,
                CampaignContact.reserved_by.is_(None),
                (CampaignContact.next_attempt_at.is_(None))
                | (CampaignContact.next_attempt_at <= now),
            )
            # The campaign's own columns only: an index on (campaign_id, state,
            # next_attempt_at NULLS FIRST, contact_id) serves it without sorting the list.
            .order_by(
                CampaignContact.next_attempt_at.asc().nulls_first(), CampaignContact.contact_id
            )
            .limit(count * CANDIDATES_PER_CALL)
            .with_for_update(of=CampaignContact, skip_locked=True)
        )
    ).all()
    if not rows:
        return []
    candidates = [(link, _candidate(contact)) for link, contact in rows]
    chosen = await _verdicts(session, plan, candidates, now, count, law_now or now)
    attempts = [(_attempt(session, plan, link, c.number, now), c) for link, c in chosen]
    await session.flush()
    return [
        Placement(
            attempt_id=attempt.id,
            campaign_id=plan.id,
            tenant_id=plan.tenant_id,
            contact_id=c.contact_id,
            number=c.number,
            channel_id=attempt.channel_id,
            mode=plan.mode,
        )
        for attempt, c in attempts
    ]


async def agent_device(session: AsyncSession, tenant_id: int, user_id: int) -> str:
    """The SIP username of the device ``user_id`` is logged in with (AgentNotReady if none)."""
    sip_username = await session.scalar(
        select(AgentDevice.sip_username)
        .join(AgentSession, AgentSession.device_id == AgentDevice.id)
        .where(
            AgentSession.tenant_id == tenant_id,
            AgentSession.user_id == user_id,
            AgentSession.ended_at.is_(None),
        )
    )
    if sip_username is None:
        raise AgentNotReady("the agent is not logged in with a device")
    return sip_username


async def claim_preview(
    session: AsyncSession,
    tenant_id: int,
    campaign_id: int,
    contact_id: int,
    agent_user_id: int,
    now: datetime,
    *,
    law_now: datetime | None = None,
    channel_id: str | None = None,
) -> tuple[Placement, CampaignPlan, str]:
    """The preview attempt of ``contact_id`` for the agent (written, not sent), its plan and
    the agent's device; CallRefused when the law or the campaign forbids the call now (the
    refusal is recorded: the caller commits it before raising further). ``channel_id``, the
    attempt's, when the request names it (one attempt per request, remote_preview.py)."""
    campaign = await session.scalar(
        select(Campaign).where(Campaign.id == campaign_id, Campaign.tenant_id == tenant_id)
    )
    if campaign is None:
        raise NotFound("no such campaign")
    if campaign.mode != CampaignMode.PREVIEW.value:
        raise CallRefused("only a preview campaign's contacts are dialled by an agent")
    if campaign.status != CampaignStatus.RUNNING.value:
        raise CallRefused(f"the campaign is {campaign.status}", status=campaign.status)
    device = await agent_device(session, tenant_id, agent_user_id)
    await _lock_tenant(session, tenant_id)
    row = (
        await session.execute(
            select(CampaignContact, Contact)
            .join(Contact, Contact.id == CampaignContact.contact_id)
            .where(
                CampaignContact.campaign_id == campaign_id,
                CampaignContact.contact_id == contact_id,
                CampaignContact.tenant_id == tenant_id,
            )
            .with_for_update(of=CampaignContact)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("no such contact in this campaign")
    link, contact = row
    if link.state != ContactState.PENDING.value or link.reserved_by not in (None, agent_user_id):
        raise CallRefused(f"the contact is {link.state}", state=link.state)
    (plan,) = await load_plans(session, [campaign_id])
    chosen = await _verdicts(session, plan, [(link, _candidate(contact))], now, 1, law_now or now)
    if not chosen:
        raise CallRefused(
            "the law does not allow this call now", rule=link.last_rule or "in-a-call"
        )
    attempt = _attempt(session, plan, link, contact.number, now, channel_id=channel_id)
    attempt.agent_user_id = agent_user_id
    await session.flush()
    placement = Placement(
        attempt_id=attempt.id,
        campaign_id=plan.id,
        tenant_id=tenant_id,
        contact_id=contact_id,
        number=contact.number,
        channel_id=attempt.channel_id,
        mode=plan.mode,
    )
    return placement, plan, device


def originate_variables(plan: CampaignPlan, placement: Placement) -> dict[str, str]:
    """The channel variables campaign.conf.j2 reads."""
    return {
        "GRAAM_ATTEMPT": str(placement.attempt_id),
        "GRAAM_CAMPAIGN": str(plan.id),
        "GRAAM_CAMPAIGN_CID": plan.caller_id,
        "GRAAM_CAMPAIGN_RING": str(plan.ring_seconds),
        "GRAAM_CAMPAIGN_QUEUE": str(plan.queue_id),
        "GRAAM_CAMPAIGN_AMD": "1" if plan.amd_enabled else "0",
        "GRAAM_CAMPAIGN_WAIT": str(abandon_wait_seconds(plan)),
        "GRAAM_CAMPAIGN_MACHINE": plan.machine_action,
        "GRAAM_CAMPAIGN_MACHINE_PROMPT": plan.machine_prompt or "",
        "GRAAM_CAMPAIGN_ABANDON_PROMPT": plan.abandon_prompt or "",
        "GRAAM_CAMPAIGN_CONTACT": placement.number,
    }


def abandon_wait_seconds(plan: CampaignPlan) -> int:
    """Seconds the answered call may wait in the queue: the law's delay, less AMD's time."""
    delay = law_for_region("FR").abandon_delay_seconds
    return max(1, delay - AMD_SECONDS) if plan.amd_enabled else delay


class NotSent(Exception):
    """Asterisk certainly did not receive the Originate: the attempt ends as failed."""


NOT_SENT = "NOTSENT"  # the dial status of an attempt whose Originate Asterisk never received


async def originate_attempt(
    ami: ActionSender, plan: CampaignPlan, placement: Placement, *, agent_device: str | None = None
) -> None:
    """Send the one Originate of a committed attempt. Raises NotSent when Asterisk certainly
    never queued the call; any other failure leaves the attempt open for reconciliation."""
    tenant = f"t{plan.tenant_id}"
    try:
        if agent_device is None:
            await ami_actions.originate(
                ami,
                f"Local/{placement.number}@{tenant}-campaign-dial/n",
                channel_id=placement.channel_id,
                context=f"{tenant}-campaign-answered",
                exten="s",
                caller_id=f"<{plan.caller_id}>",
                variables=originate_variables(plan, placement),
                timeout_ms=(plan.ring_seconds + ORIGINATE_MARGIN_SECONDS) * 1000,
                account=tenant,
            )
        else:
            # The agent's phone rings first and, once answered, dials the contact: the
            # person hears the agent at once; the agent's phone shows the contact's number.
            await ami_actions.originate(
                ami,
                f"PJSIP/{agent_device}",
                channel_id=placement.channel_id,
                context=f"{tenant}-campaign-dial",
                exten=placement.number,
                caller_id=f"<{placement.number}>",
                variables={**originate_variables(plan, placement), "GRAAM_CAMPAIGN_PREVIEW": "1"},
                timeout_ms=PREVIEW_AGENT_RING_SECONDS * 1000,
                account=tenant,
            )
    except (AmiNotConnected, AmiInjectionError) as err:
        raise NotSent(str(err)) from err
    except AmiActionError as err:
        # Asterisk answered Error: it queued nothing (an async Originate's success is queued).
        raise NotSent(err.message) from err
    except AmiError:
        log.warning(
            "campaign originate unanswered, left to reconciliation attempt=%d tenant=%d",
            placement.attempt_id,
            placement.tenant_id,
        )


async def end_unsent(
    session: AsyncSession, placement: Placement, reason: str
) -> CampaignAttempt | None:
    """The open attempt whose Originate Asterisk never received, marked so (the caller ends
    it as failed: no call was placed)."""
    attempt = await session.get(CampaignAttempt, placement.attempt_id, with_for_update=True)
    if attempt is None or attempt.ended_at is not None:
        return None
    attempt.dial_status = NOT_SENT
    log.warning(
        "campaign originate not sent attempt=%d tenant=%d reason=%s",
        placement.attempt_id,
        placement.tenant_id,
        reason[:200],
    )
    return attempt
