"""Campaign figures: abandon rates (the law's), progress, and statistics per campaign and agent.

The abandon rate is abandoned / calls answered by a person (answered + abandoned), answering
machines excluded, as the French rule counts it; it is rounded up to 4 decimals so a rate
just above the limit never shows as within it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_UP, Decimal

from sqlalchemy import and_, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.auth.models import User
from graam_pbx.campaigns.models import (
    CampaignAttempt,
    CampaignContact,
    ContactState,
    Disposition,
    Outcome,
)

# The two rolling periods the law's abandon limit holds over.
SHORT_PERIOD = timedelta(hours=24)
LONG_PERIOD = timedelta(days=30)
# An attempt not ended yet, in progress figures.
IN_PROGRESS = "in_progress"
_RATE_PLACES = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class AbandonFigures:
    abandoned: int
    live: int  # calls answered by a person: answered + abandoned
    rate: Decimal


def abandon_rate(abandoned: int, live: int) -> Decimal:
    """abandoned / live, rounded up to 4 decimals; 0 when no person answered."""
    if live <= 0:
        return Decimal(0)
    return (Decimal(abandoned) / Decimal(live)).quantize(_RATE_PLACES, rounding=ROUND_UP)


async def abandon_figures(
    session: AsyncSession, campaign_id: int, since: datetime, until: datetime
) -> AbandonFigures:
    """The campaign's abandons among calls answered by a person, placed in [since, until)."""
    row = (
        await session.execute(
            select(
                func.count().filter(CampaignAttempt.outcome == Outcome.ABANDONED.value),
                func.count().filter(CampaignAttempt.outcome == Outcome.ANSWERED.value),
            ).where(
                CampaignAttempt.campaign_id == campaign_id,
                CampaignAttempt.placed_at >= since,
                CampaignAttempt.placed_at < until,
            )
        )
    ).one()
    abandoned, answered = int(row[0]), int(row[1])
    live = abandoned + answered
    return AbandonFigures(abandoned=abandoned, live=live, rate=abandon_rate(abandoned, live))


@dataclass(frozen=True, slots=True)
class Progress:
    contacts: int
    called: int
    remaining: int
    by_state: dict[str, int]
    by_outcome: dict[str, int]
    attempts: int


async def progress(session: AsyncSession, campaign_id: int) -> Progress:
    """How far the campaign is: contacts by state, attempts by outcome."""
    states = await session.execute(
        select(
            CampaignContact.state,
            func.count(),
            func.count().filter(CampaignContact.attempts > 0),
        )
        .where(CampaignContact.campaign_id == campaign_id)
        .group_by(CampaignContact.state)
    )
    by_state = {state.value: 0 for state in ContactState}
    called = 0
    for state, count, with_attempts in states:
        by_state[str(state)] = int(count)
        called += int(with_attempts)
    by_outcome = await attempts_by_outcome(session, campaign_id)
    return Progress(
        contacts=sum(by_state.values()),
        called=called,
        remaining=by_state[ContactState.PENDING.value] + by_state[ContactState.DIALING.value],
        by_state=by_state,
        by_outcome=by_outcome,
        attempts=sum(by_outcome.values()),
    )


async def attempts_by_outcome(session: AsyncSession, campaign_id: int) -> dict[str, int]:
    """The campaign's attempts by outcome (``in_progress``: not ended yet)."""
    outcomes = await session.execute(
        select(CampaignAttempt.outcome, func.count())
        .where(CampaignAttempt.campaign_id == campaign_id)
        .group_by(CampaignAttempt.outcome)
    )
    return {str(outcome or IN_PROGRESS): int(count) for outcome, count in outcomes}


@dataclass(slots=True)
class AgentFigures:
    user_id: int
    display_name: str
    calls: int = 0
    talk_seconds: int = 0
    dispositions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CampaignFigures:
    attempts: int
    answered: int
    machines: int
    abandoned: int
    abandon_rate_24h: Decimal
    abandon_rate_30d: Decimal
    contacts_reached: int
    dispositions: dict[str, int]
    talk_seconds: int
    agents: list[AgentFigures]


async def campaign_figures(
    session: AsyncSession, campaign_id: int, now: datetime
) -> CampaignFigures:
    """Statistics of the whole campaign, and per agent who took its calls."""
    is_answered = CampaignAttempt.outcome == Outcome.ANSWERED.value
    totals = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(is_answered),
                func.count().filter(CampaignAttempt.outcome == Outcome.MACHINE.value),
                func.count().filter(CampaignAttempt.outcome == Outcome.ABANDONED.value),
                func.count(distinct(CampaignAttempt.contact_id)).filter(is_answered),
                func.coalesce(func.sum(CampaignAttempt.talk_seconds), 0),
            ).where(CampaignAttempt.campaign_id == campaign_id)
        )
    ).one()
    short = await abandon_figures(session, campaign_id, now - SHORT_PERIOD, now)
    long = await abandon_figures(session, campaign_id, now - LONG_PERIOD, now)
    dispositions: dict[str, int] = defaultdict(int)
    rows = await session.execute(
        select(CampaignAttempt.agent_user_id, Disposition.code, func.count())
        .join(Disposition, Disposition.id == CampaignAttempt.disposition_id)
        .where(CampaignAttempt.campaign_id == campaign_id)
        .group_by(CampaignAttempt.agent_user_id, Disposition.code)
    )
    by_agent_disposition: dict[int, dict[str, int]] = defaultdict(dict)
    for user_id, code, count in rows:
        dispositions[str(code)] += int(count)
        if user_id is not None:
            by_agent_disposition[int(user_id)][str(code)] = int(count)
    agents = await session.execute(
        select(
            CampaignAttempt.agent_user_id,
            User.display_name,
            func.count(),
            func.coalesce(func.sum(CampaignAttempt.talk_seconds), 0),
        )
        .join(User, User.id == CampaignAttempt.agent_user_id)
        .where(
            and_(
                CampaignAttempt.campaign_id == campaign_id,
                CampaignAttempt.agent_user_id.is_not(None),
            )
        )
        .group_by(CampaignAttempt.agent_user_id, User.display_name)
        .order_by(CampaignAttempt.agent_user_id)
    )
    return CampaignFigures(
        attempts=int(totals[0]),
        answered=int(totals[1]),
        machines=int(totals[2]),
        abandoned=int(totals[3]),
        abandon_rate_24h=short.rate,
        abandon_rate_30d=long.rate,
        contacts_reached=int(totals[4]),
        dispositions=dict(dispositions),
        talk_seconds=int(totals[5] or 0),
        agents=[
            AgentFigures(
                user_id=int(user_id or 0),
                display_name=str(name),
                calls=int(calls),
                talk_seconds=int(talk or 0),
                dispositions=by_agent_disposition.get(int(user_id or 0), {}),
            )
            for user_id, name, calls, talk in agents
        ],
    )
