"""The pacer's inputs for one campaign: its agents (Asterisk's queue), its calls in progress,
its recent rates (Postgres) and the tenant's licence cap."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.ami import Message
from graam_pbx.campaigns import stats
from graam_pbx.campaigns.law import law_for_region
from graam_pbx.campaigns.models import CampaignAttempt, Outcome
from graam_pbx.campaigns.pacing import MEASURED_CALLS_BEFORE_PREDICTIVE, PacingInput
from graam_pbx.campaigns.placing import CampaignPlan
from graam_pbx.tenants.models import Tenant

# Recent attempts the rates are measured on, and the priors they start from: a campaign's
# first calls are too few to trust (a prior weighs as PRIOR_WEIGHT attempts).
RECENT_ATTEMPTS = 300
PRIOR_WEIGHT = 20
PRIOR_RING_SECONDS = 10.0
PRIOR_HANDLE_SECONDS = 180.0
# Asterisk's device states (QueueMember's Status) of a member that cannot take a call now.
_BUSY_STATES = frozenset({"2", "3", "6", "7", "8"})  # in use, busy, ringing, ring+in use, hold
_FREE_STATES = frozenset({"1"})  # not in use


@dataclass(frozen=True, slots=True)
class Agents:
    """The queue's members as Asterisk sees them."""

    available: int
    busy: int
    paused: int


def agents_from_queue_status(
    events: list[Message], queue: str, *, wrapup_seconds: int = 0, now: float | None = None
) -> Agents:
    """Counts the members of ``queue`` in a ``QueueStatus`` answer. A member still in its
    wrap-up after its last call (``LastCall``, Asterisk's epoch seconds, plus its own
    ``Wrapuptime`` or the queue's ``wrapup_seconds``) is busy: the queue would not ring it."""
    available = busy = paused = 0
    for event in events:
        if event.event != "QueueMember" or event.get("Queue") != queue:
            continue
        if event.get("Paused") == "1":
            paused += 1
        elif (
            event.get("InCall") == "1"
            or event.get("Status") in _BUSY_STATES
            or _in_wrapup(event, wrapup_seconds, now)
        ):
            busy += 1
        elif event.get("Status") in _FREE_STATES:
            available += 1
    return Agents(available=available, busy=busy, paused=paused)


def _in_wrapup(member: Message, wrapup_seconds: int, now: float | None) -> bool:
    own = member.get("Wrapuptime") or ""
    wrapup = int(own) if own.isdigit() and int(own) > 0 else wrapup_seconds
    last_call = member.get("LastCall") or ""
    if wrapup <= 0 or not last_call.isdigit() or int(last_call) == 0:
        return False
    return (time.time() if now is None else now) < int(last_call) + wrapup


@dataclass(frozen=True, slots=True)
class CallsInProgress:
    dialing: int  # placed, not answered yet
    waiting: int  # answered, no agent yet


async def calls_in_progress(session: AsyncSession, campaign_id: int) -> CallsInProgress:
    """The campaign's open attempts: dialling, and answered but not yet with an agent."""
    row = (
        await session.execute(
            select(
                func.count().filter(CampaignAttempt.answered_at.is_(None)),
                func.count().filter(
                    CampaignAttempt.answered_at.is_not(None),
                    CampaignAttempt.connected_at.is_(None),
                ),
            ).where(CampaignAttempt.campaign_id == campaign_id, CampaignAttempt.ended_at.is_(None))
        )
    ).one()
    return CallsInProgress(dialing=int(row[0]), waiting=int(row[1]))


async def open_calls_by_campaign(session: AsyncSession, tenant_id: int) -> dict[int, int]:
    """The tenant's attempts in progress per campaign."""
    rows = await session.execute(
        select(CampaignAttempt.campaign_id, func.count())
        .where(CampaignAttempt.tenant_id == tenant_id, CampaignAttempt.ended_at.is_(None))
        .group_by(CampaignAttempt.campaign_id)
    )
    return {int(campaign_id): int(n) for campaign_id, n in rows}


async def licence_cap(session: AsyncSession, plan: CampaignPlan, calls_per_licence: int) -> int:
    """The most calls the campaign may have in progress: its channels, and the tenant's
    licences times ``calls_per_licence`` less its other campaigns' calls."""
    licences = await session.scalar(select(Tenant.licences).where(Tenant.id == plan.tenant_id))
    by_campaign = await open_calls_by_campaign(session, plan.tenant_id)
    others = sum(n for cid, n in by_campaign.items() if cid != plan.id)
    tenant_room = int(licences or 0) * calls_per_licence - others
    return max(0, min(plan.max_channels, tenant_room))


@dataclass(frozen=True, slots=True)
class Rates:
    answer_rate: float
    mean_ring_seconds: float
    mean_handle_seconds: float


def _blend(measured_sum: float, count: int, prior: float) -> float:
    return (measured_sum + prior * PRIOR_WEIGHT) / (count + PRIOR_WEIGHT)


async def recent_rates(session: AsyncSession, campaign_id: int) -> Rates:
    """Answer rate (a person answered, machines excluded), ring and handling times over the
    campaign's recent ended attempts, each blended with its prior."""
    recent = (
        select(
            CampaignAttempt.outcome,
            CampaignAttempt.placed_at,
            CampaignAttempt.answered_at,
            CampaignAttempt.talk_seconds,
        )
        .where(
            CampaignAttempt.campaign_id == campaign_id,
            CampaignAttempt.ended_at.is_not(None),
            CampaignAttempt.outcome != Outcome.LOST.value,
        )
        .order_by(CampaignAttempt.placed_at.desc())
        .limit(RECENT_ATTEMPTS)
        .subquery()
    )
    person = recent.c.outcome.in_([Outcome.ANSWERED.value, Outcome.ABANDONED.value])
    ring = func.extract("epoch", recent.c.answered_at - recent.c.placed_at)
    row = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(person),
                func.coalesce(func.sum(ring).filter(recent.c.answered_at.is_not(None)), 0),
                func.count().filter(recent.c.answered_at.is_not(None)),
                func.coalesce(
                    func.sum(recent.c.talk_seconds).filter(
                        recent.c.outcome == Outcome.ANSWERED.value
                    ),
                    0,
                ),
                func.count().filter(
                    recent.c.outcome == Outcome.ANSWERED.value, recent.c.talk_seconds.is_not(None)
                ),
            ).select_from(recent)
        )
    ).one()
    ended, people, ring_sum, rung, talk_sum, talked = (
        int(row[0]),
        int(row[1]),
        float(row[2]),
        int(row[3]),
        float(row[4]),
        int(row[5]),
    )
    return Rates(
        # Unknown (0: the pacer dials progressively) until enough calls have finished.
        answer_rate=people / ended if ended >= MEASURED_CALLS_BEFORE_PREDICTIVE else 0.0,
        mean_ring_seconds=_blend(ring_sum, rung, PRIOR_RING_SECONDS),
        mean_handle_seconds=_blend(talk_sum, talked, PRIOR_HANDLE_SECONDS),
    )


async def long_abandon_figures(
    session: AsyncSession, campaign_id: int, now: datetime
) -> stats.AbandonFigures:
    """The campaign's abandon figures over the law's longest period (30 days in France)."""
    period = law_for_region("FR").abandon_periods[-1]
    return await stats.abandon_figures(session, campaign_id, now - period, now)


async def pacing_input(
    session: AsyncSession,
    plan: CampaignPlan,
    agents: Agents,
    calls_per_licence: int,
    now: datetime,
    *,
    abandon_long: stats.AbandonFigures | None = None,
) -> PacingInput:
    """Everything the pacer needs for ``plan`` now; ``abandon_long``, the long period's
    figures when the caller has them (recent enough), else they are counted."""
    law = law_for_region("FR")
    cap = await licence_cap(session, plan, calls_per_licence)
    calls = await calls_in_progress(session, plan.id)
    rates = await recent_rates(session, plan.id)
    abandon_short = await stats.abandon_figures(session, plan.id, now - law.abandon_periods[0], now)
    if abandon_long is None:
        abandon_long = await long_abandon_figures(session, plan.id, now)
    return PacingInput(
        mode=plan.mode,
        agents_available=agents.available,
        agents_busy=agents.busy,
        calls_dialing=calls.dialing,
        calls_waiting=calls.waiting,
        answer_rate=rates.answer_rate,
        mean_ring_seconds=rates.mean_ring_seconds,
        mean_handle_seconds=rates.mean_handle_seconds,
        abandon_rate_short=float(abandon_short.rate),
        abandon_rate_long=float(abandon_long.rate),
        abandon_target=plan.abandon_target,
        abandon_limit=float(law.max_abandon_rate),
        cap=cap,
    )
