"""How campaign attempts end: AMI events in, outcomes, retries, contacts' states and
finished campaigns out.

The dialplan (campaign.conf.j2) reports each attempt by user events carrying its id:
``GraamCampaignDial`` (the contact's leg ended, with DIALSTATUS), ``GraamCampaignAnswered``,
``GraamCampaignAmd`` and ``GraamCampaignResult`` (the answered side ended: answered,
abandoned or machine); the queue's ``AgentConnect`` (its Uniqueid is the attempt's channel
id) tells which agent took it; an ``OriginateResponse`` failure with no dial event means the
call never started.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.agents.models import AgentDevice
from graam_pbx.ami import Message
from graam_pbx.ami.protocol import event_time
from graam_pbx.campaigns.models import (
    RETRY_OUTCOMES,
    Campaign,
    CampaignAttempt,
    CampaignContact,
    CampaignMode,
    CampaignStatus,
    ContactState,
    Outcome,
)
from graam_pbx.metrics import DIALER_ATTEMPTS

log = logging.getLogger(__name__)

DIAL_EVENT = "GraamCampaignDial"
ANSWERED_EVENT = "GraamCampaignAnswered"
AMD_EVENT = "GraamCampaignAmd"
RESULT_EVENT = "GraamCampaignResult"
USER_EVENTS = frozenset({DIAL_EVENT, ANSWERED_EVENT, AMD_EVENT, RESULT_EVENT})
CHANNEL_PREFIX = "cmp-"  # every attempt's channel id starts so (placing.py)

# Asterisk's DIALSTATUS of a contact's leg that did not answer, as outcomes.
_DIAL_OUTCOMES = {
    "NOANSWER": Outcome.NO_ANSWER,
    "CANCEL": Outcome.NO_ANSWER,
    "BUSY": Outcome.BUSY,
}
# The retry rule an outcome follows (an abandoned person is called again like one who did not
# answer; a call lost by a restart like a failed one).
_RETRY_RULE = {
    Outcome.NO_ANSWER.value: "no_answer",
    Outcome.ABANDONED.value: "no_answer",
    Outcome.BUSY.value: "busy",
    Outcome.FAILED.value: "failed",
    Outcome.LOST.value: "failed",
    Outcome.MACHINE.value: "machine",
}
_MEMBER_NAME = re.compile(r"^agent-([1-9][0-9]{0,17})$")
_INTEGER = re.compile(r"^[1-9][0-9]{0,17}$")


def dial_outcome(dial_status: str) -> Outcome:
    """The outcome of a contact's leg that Asterisk reports with ``dial_status``."""
    return _DIAL_OUTCOMES.get(dial_status.upper(), Outcome.FAILED)


async def end_attempt(
    session: AsyncSession,
    attempt: CampaignAttempt,
    outcome: Outcome | str,
    now: datetime,
    *,
    talk_seconds: int | None = None,
) -> bool:
    """End an open attempt with ``outcome`` and move its contact on (done, or pending again
    per the campaign's retries). False when the attempt had already ended."""
    if attempt.ended_at is not None:
        return False
    value = Outcome(outcome).value
    attempt.outcome = value
    attempt.ended_at = now
    if talk_seconds is not None:
        attempt.talk_seconds = max(0, talk_seconds)
    link = await session.get(
        CampaignContact, (attempt.campaign_id, attempt.contact_id), with_for_update=True
    )
    campaign = await session.get(Campaign, attempt.campaign_id)
    if link is not None and campaign is not None:
        next_step(link, campaign, value, now)
    DIALER_ATTEMPTS.labels(tenant=str(attempt.tenant_id), outcome=value).inc()
    log.info(
        "campaign attempt ended attempt=%d campaign=%d tenant=%d outcome=%s",
        attempt.id,
        attempt.campaign_id,
        attempt.tenant_id,
        value,
    )
    return True


def next_step(link: CampaignContact, campaign: Campaign, outcome: str, now: datetime) -> None:
    """Move a dialling contact on after an attempt's ``outcome``: done when answered or out of
    retries, else pending again after the delay of the outcome's retry rule."""
    link.attempts = (link.attempts or 0) + 1
    link.last_outcome = outcome
    link.updated_at = now
    link.reserved_by = None
    if link.state != ContactState.DIALING.value:
        return  # a disposition or a user moved it meanwhile: theirs is the last word
    if outcome == Outcome.ANSWERED.value:
        link.state = ContactState.DONE.value
        link.next_attempt_at = None
        return
    rule_name = _RETRY_RULE.get(outcome, "failed")
    rule: dict[str, Any] = (campaign.retries or {}).get(rule_name) or {}
    used = dict(link.retries_used or {})
    if rule_name in RETRY_OUTCOMES and used.get(rule_name, 0) < int(rule.get("max", 0)):
        used[rule_name] = used.get(rule_name, 0) + 1
        link.retries_used = used  # a new dict: JSONB changes are seen by assignment
        link.state = ContactState.PENDING.value
        link.next_attempt_at = now + timedelta(seconds=int(rule.get("delay_seconds", 0)))
    else:
        link.state = ContactState.DONE.value
        link.next_attempt_at = None


async def finish_campaigns(
    session: AsyncSession, campaign_ids: Collection[int], now: datetime
) -> list[int]:
    """Running campaigns of ``campaign_ids`` with no contact left to call, nor a call in
    progress, become finished; returns their ids."""
    if not campaign_ids:
        return []
    left = exists().where(
        CampaignContact.campaign_id == Campaign.id,
        CampaignContact.state.in_([ContactState.PENDING.value, ContactState.DIALING.value]),
    )
    in_progress = exists().where(
        and_(CampaignAttempt.campaign_id == Campaign.id, CampaignAttempt.ended_at.is_(None))
    )
    finished = await session.scalars(
        update(Campaign)
        .where(
            Campaign.id.in_(list(campaign_ids)),
            Campaign.status == CampaignStatus.RUNNING.value,
            ~left,
            ~in_progress,
        )
        .values(status=CampaignStatus.FINISHED.value, ended_at=now, lease_owner=None)
        .returning(Campaign.id)
    )
    ids = list(finished)
    for campaign_id in ids:
        log.info("campaign finished campaign=%d", campaign_id)
    return ids


def _event_attempt_id(message: Message) -> int | None:
    value = message.get("GraamAttempt") or ""
    return int(value) if _INTEGER.match(value) else None


def _event_tenant(message: Message) -> int | None:
    value = message.get("GraamTenant") or ""
    return int(value) if _INTEGER.match(value) else None


def from_attempt_call(message: Message, channel_id: str) -> bool:
    """Whether the event's channel belongs to the call placed with ``channel_id``: the
    originated channel (its Local twin ``<id>;2``) or one linked to it."""
    for header in ("Uniqueid", "Linkedid"):  # looked up case-insensitively
        value = message.get(header)
        if value and value.removesuffix(";2") == channel_id:
            return True
    return False


async def _open_attempt_by_id(session: AsyncSession, message: Message) -> CampaignAttempt | None:
    attempt_id, tenant_id = _event_attempt_id(message), _event_tenant(message)
    if attempt_id is None or tenant_id is None:
        return None
    attempt = await session.get(CampaignAttempt, attempt_id, with_for_update=True)
    # A tenant's dialplan reports only its own attempts, and only from the attempt's own call:
    # an attempt id is a channel variable, which any other channel of the tenant could carry.
    if (
        attempt is None
        or attempt.tenant_id != tenant_id
        or not from_attempt_call(message, attempt.channel_id)
    ):
        return None
    return attempt


def _seconds_between(start: datetime | None, end: datetime) -> int | None:
    return None if start is None else max(0, round((end - start).total_seconds()))


async def apply_event(session: AsyncSession, message: Message) -> int | None:
    """Apply one AMI event to its attempt; returns the campaign id of an attempt it ended."""
    now = event_time(message, datetime.now(UTC))
    name = message.event or ""
    if name == "UserEvent":
        kind = message.get("UserEvent") or ""
        if kind not in USER_EVENTS:
            return None
        attempt = await _open_attempt_by_id(session, message)
        if attempt is None:
            return None
        if kind == DIAL_EVENT:
            return await _on_dial(session, attempt, message, now)
        if kind == ANSWERED_EVENT:
            if attempt.answered_at is None:
                attempt.answered_at = now
            return None
        if kind == AMD_EVENT:
            attempt.amd_status = (message.get("AmdStatus") or "")[:16] or None
            return None
        return await _on_result(session, attempt, message, now)
    if name == "AgentConnect":
        await _on_agent_connect(session, message, now)
    return None


async def _on_dial(
    session: AsyncSession, attempt: CampaignAttempt, message: Message, now: datetime
) -> int | None:
    status = (message.get("DialStatus") or "").upper()
    refused = message.get("GraamRefused") or ""
    attempt.dial_status = (status or ("REFUSED" if refused else "NONE"))[:16]
    if attempt.ended_at is not None:
        return None
    if status == "ANSWER":
        if attempt.mode != CampaignMode.PREVIEW.value:
            return None  # the answered side (its result event) ends it
        # A preview call: the agent was on the line before the contact answered.
        talk = message.get("AnsweredTime") or ""
        talk_seconds = int(talk) if talk.isdigit() else None
        if talk_seconds is not None:
            attempt.answered_at = attempt.connected_at = now - timedelta(seconds=talk_seconds)
        else:
            attempt.answered_at = attempt.answered_at or now
            attempt.connected_at = attempt.connected_at or attempt.answered_at
        ended = await end_attempt(
            session, attempt, Outcome.ANSWERED, now, talk_seconds=talk_seconds
        )
        return attempt.campaign_id if ended else None
    if attempt.answered_at is not None:
        return None  # the contact answered: the result event says how it ended
    ended = await end_attempt(session, attempt, dial_outcome(status), now)
    return attempt.campaign_id if ended else None


async def _on_result(
    session: AsyncSession, attempt: CampaignAttempt, message: Message, now: datetime
) -> int | None:
    result = (message.get("GraamResult") or "").lower()
    amd = message.get("AmdStatus") or ""
    if amd and attempt.amd_status is None:
        attempt.amd_status = amd[:16]
    if attempt.answered_at is None:
        attempt.answered_at = now
    if attempt.connected_at is not None or result == Outcome.ANSWERED.value:
        outcome = Outcome.ANSWERED
        talk = _seconds_between(attempt.connected_at, now)
    elif result == Outcome.MACHINE.value:
        outcome, talk = Outcome.MACHINE, None
    else:
        outcome, talk = Outcome.ABANDONED, None
    ended = await end_attempt(session, attempt, outcome, now, talk_seconds=talk)
    return attempt.campaign_id if ended else None


async def _on_agent_connect(session: AsyncSession, message: Message, now: datetime) -> None:
    channel_id = message.get("Uniqueid") or message.get("UniqueID") or ""
    if not channel_id.startswith(CHANNEL_PREFIX):
        return None
    attempt = await session.scalar(
        select(CampaignAttempt).where(CampaignAttempt.channel_id == channel_id).with_for_update()
    )
    if attempt is None or attempt.ended_at is not None:
        return None
    queue = message.get("Queue") or ""
    if not queue.startswith(f"t{attempt.tenant_id}-q"):
        return None
    attempt.connected_at = attempt.connected_at or now
    attempt.answered_at = attempt.answered_at or now
    attempt.agent_user_id = await _agent_user(session, attempt.tenant_id, message)
    return None


async def _agent_user(session: AsyncSession, tenant_id: int, message: Message) -> int | None:
    """The agent a queue member is: its member name (agent-<user id>), else its device."""
    match = _MEMBER_NAME.match(message.get("MemberName") or "")
    interface = message.get("Interface") or ""
    if match is None and interface.startswith("PJSIP/"):
        return await session.scalar(
            select(AgentDevice.user_id).where(
                AgentDevice.tenant_id == tenant_id,
                AgentDevice.sip_username == interface.removeprefix("PJSIP/"),
            )
        )
    if match is None:
        return None
    user_id = int(match.group(1))
    # A member name is the agent worker's, but only a user of the tenant is recorded.
    owned = await session.scalar(
        select(AgentDevice.user_id).where(
            AgentDevice.tenant_id == tenant_id, AgentDevice.user_id == user_id
        )
    )
    return user_id if owned is not None else None


async def end_failed_originate(session: AsyncSession, channel_id: str, now: datetime) -> int | None:
    """An Originate that failed before any dial event: the attempt ends as failed."""
    attempt = await session.scalar(
        select(CampaignAttempt).where(CampaignAttempt.channel_id == channel_id).with_for_update()
    )
    if attempt is None or attempt.ended_at is not None or attempt.dial_status is not None:
        return None
    attempt.dial_status = "NOTSTARTED"
    ended = await end_attempt(session, attempt, Outcome.FAILED, now)
    return attempt.campaign_id if ended else None
