"""Campaigns: their settings (checked against the law) and their lifecycle.

draft → running (start) ⇄ paused (pause, resume) → stopped (stop); the dialer turns a running
campaign with nothing left to call into finished. Only a running campaign is dialled; pausing
or stopping stops new calls while calls in progress finish.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Scope
from graam_pbx.campaigns import blocklists, calls, law
from graam_pbx.campaigns.dispositions import ensure_catalogue
from graam_pbx.campaigns.models import (
    Audience,
    CallRefusal,
    Campaign,
    CampaignAttempt,
    CampaignContact,
    CampaignMode,
    CampaignStatus,
    Contact,
    ContactList,
    ContactState,
    MachineAction,
)
from graam_pbx.campaigns.schemas.campaigns import (
    DEFAULT_RETRIES,
    CampaignCreate,
    CampaignUpdate,
    HoursIn,
)
from graam_pbx.db import ensure_version, flush_or_conflict, get_in_tenant, keyset_page
from graam_pbx.errors import Conflict, Invalid, NotFound
from graam_pbx.numbers.models import NumberStatus, PhoneNumber
from graam_pbx.prompts.models import Prompt
from graam_pbx.queues.models import Queue
from graam_pbx.tenants.models import Tenant, TenantStatus

_UNIQUE_NAME = "uq_campaigns_tenant_id_name"
_AUTOMATED = (CampaignMode.PROGRESSIVE.value, CampaignMode.PREDICTIVE.value)
_EDITABLE = (CampaignStatus.DRAFT.value, CampaignStatus.PAUSED.value)


class CampaignStatusConflict(Conflict):
    """The campaign's status does not allow this (the current status is in details)."""

    error_id = "campaign-status"


class CannotStart(Conflict):
    """The campaign may not start (or resume) yet; the message says what is missing."""

    error_id = "campaign-cannot-start"


# ---- settings -------------------------------------------------------------------------------


async def create_campaign(session: AsyncSession, scope: Scope, data: CampaignCreate) -> Campaign:
    """A draft campaign of the tenant; its list, queue, prompts and caller ID are the tenant's."""
    await ensure_catalogue(session, scope.tenant_id)
    values = data.model_dump(exclude={"calling_hours", "retries"})
    campaign = Campaign(
        tenant_id=scope.tenant_id,
        status=CampaignStatus.DRAFT.value,
        retries=data.retries.merged(DEFAULT_RETRIES),
        calling_hours=[],
        **{k: (v.value if hasattr(v, "value") else v) for k, v in values.items()},
    )
    contact_list = await _check_references(session, scope.tenant_id, campaign)
    campaign.calling_hours = clip_calling_hours(data.calling_hours, contact_list.default_region)
    session.add(campaign)
    await flush_or_conflict(session, taken={_UNIQUE_NAME: ("name", data.name)})
    await audit.record(
        session, scope, "create", "campaign", campaign.id, data.model_dump(mode="json")
    )
    return campaign


async def list_campaigns(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[Campaign], int | None]:
    """The tenant's campaigns, oldest first."""
    statement = select(Campaign).where(Campaign.tenant_id == scope.tenant_id)
    return await keyset_page(session, statement, Campaign.id, after_id, limit)


async def running_campaigns(session: AsyncSession, tenant_id: int) -> list[Campaign]:
    """The tenant's running campaigns, oldest first."""
    rows = await session.scalars(
        select(Campaign)
        .where(Campaign.tenant_id == tenant_id, Campaign.status == CampaignStatus.RUNNING.value)
        .order_by(Campaign.id)
    )
    return list(rows.all())


async def get_campaign(session: AsyncSession, scope: Scope, campaign_id: int) -> Campaign:
    """One campaign of the tenant (another tenant's: NotFound)."""
    return await get_in_tenant(session, Campaign, scope.tenant_id, campaign_id)


async def update_campaign(
    session: AsyncSession,
    scope: Scope,
    campaign_id: int,
    data: CampaignUpdate,
    expected: int | None,
) -> Campaign:
    """Change a draft or paused campaign's settings (its list: a draft's only)."""
    campaign = await _locked(session, scope.tenant_id, campaign_id)
    ensure_version(campaign, expected)
    if campaign.status not in _EDITABLE:
        raise _status_conflict(campaign, "changed")
    changes = data.model_dump(exclude_unset=True, exclude={"calling_hours", "retries"})
    if "list_id" in changes and campaign.status != CampaignStatus.DRAFT.value:
        raise CampaignStatusConflict(
            "the list of a campaign that has started cannot change", status=campaign.status
        )
    for field, value in changes.items():
        setattr(campaign, field, value.value if hasattr(value, "value") else value)
    if data.retries is not None:
        campaign.retries = data.retries.merged(campaign.retries)
    contact_list = await _check_references(session, scope.tenant_id, campaign)
    if data.calling_hours is not None:
        campaign.calling_hours = clip_calling_hours(data.calling_hours, contact_list.default_region)
    await flush_or_conflict(session, taken={_UNIQUE_NAME: ("name", campaign.name)})
    await audit.record(
        session,
        scope,
        "update",
        "campaign",
        campaign.id,
        data.model_dump(mode="json", exclude_unset=True),
    )
    return campaign


async def delete_campaign(session: AsyncSession, scope: Scope, campaign_id: int) -> None:
    """Remove a draft campaign (one that has started keeps its record of calls)."""
    campaign = await _locked(session, scope.tenant_id, campaign_id)
    if campaign.status != CampaignStatus.DRAFT.value:
        raise _status_conflict(campaign, "deleted")
    await session.delete(campaign)
    await session.flush()
    await audit.record(session, scope, "delete", "campaign", campaign_id, {"name": campaign.name})


def clip_calling_hours(hours: list[HoursIn], region: str) -> list[dict[str, Any]]:
    """The campaign's hours clipped to the law's windows of ``region``; an entry that does
    not meet them at all is refused (422 on it)."""
    windows = law.law_for_region(region).windows
    clipped: list[dict[str, Any]] = []
    for index, entry in enumerate(hours):
        start, end = entry.bounds()
        if end <= start:
            raise Invalid(f"body.calling_hours.{index}.end", "must be after start")
        parts = [
            (max(start, window.start), min(end, window.end))
            for window in windows
            if window.weekday == entry.weekday
        ]
        parts = [(s, e) for s, e in parts if s < e]
        if not parts:
            raise Invalid(
                f"body.calling_hours.{index}",
                f"outside the law's calling hours ({describe_windows(windows)})",
            )
        clipped.extend(
            {"weekday": entry.weekday, "start": _hhmm(s), "end": _hhmm(e)} for s, e in parts
        )
    return sorted(clipped, key=lambda h: (h["weekday"], h["start"]))


def describe_windows(windows: tuple[law.Window, ...]) -> str:
    """The law's windows as text: "Mon 10:00-13:00, 14:00-20:00; Tue …"."""
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    by_day: dict[int, list[str]] = {}
    for window in windows:
        by_day.setdefault(window.weekday, []).append(f"{_hhmm(window.start)}-{_hhmm(window.end)}")
    return "; ".join(f"{days[day]} {', '.join(spans)}" for day, spans in sorted(by_day.items()))


def _hhmm(moment: time) -> str:
    return moment.strftime("%H:%M")


async def _check_references(
    session: AsyncSession, tenant_id: int, campaign: Campaign
) -> ContactList:
    """Every object the campaign names is the tenant's; its settings keep within the law."""
    contact_list = await session.scalar(
        select(ContactList).where(
            ContactList.id == campaign.list_id, ContactList.tenant_id == tenant_id
        )
    )
    if contact_list is None:
        raise Invalid("body.list_id", f"no contact list {campaign.list_id} in this tenant")
    if await _tenant_object(session, Queue, tenant_id, campaign.queue_id) is None:
        raise Invalid("body.queue_id", f"no queue {campaign.queue_id} in this tenant")
    for field in ("machine_prompt_id", "abandon_prompt_id"):
        prompt_id = getattr(campaign, field)
        if (
            prompt_id is not None
            and await _tenant_object(session, Prompt, tenant_id, prompt_id) is None
        ):
            raise Invalid(f"body.{field}", f"no prompt {prompt_id} in this tenant")
    leaves_message = campaign.machine_action == MachineAction.MESSAGE.value
    if leaves_message and campaign.machine_prompt_id is None:
        raise Invalid("body.machine_prompt_id", "leaving a message on machines needs its prompt")
    number = await session.scalar(
        select(PhoneNumber).where(
            PhoneNumber.id == campaign.caller_id_number_id,
            PhoneNumber.tenant_id == tenant_id,
            PhoneNumber.status == NumberStatus.ASSIGNED.value,
        )
    )
    if number is None:
        raise Invalid(
            "body.caller_id_number_id",
            f"number {campaign.caller_id_number_id} is not one the tenant holds",
        )
    if campaign.mode in _AUTOMATED:
        refusal = law.automated_caller_refusal(number.e164)
        if refusal is not None:
            raise Invalid("body.caller_id_number_id", refusal)
    the_law = law.law_for_region(contact_list.default_region)
    if campaign.ring_seconds < the_law.min_ring_seconds:
        raise Invalid(
            "body.ring_seconds",
            f"unanswered calls must ring at least {the_law.min_ring_seconds} s",
        )
    if campaign.abandon_target > the_law.max_abandon_rate:
        raise Invalid(
            "body.abandon_target", f"must not exceed the law's {the_law.max_abandon_rate}"
        )
    reason = calls.script_error(campaign.script)
    if reason is not None:
        raise Invalid("body.script", reason)
    return contact_list


async def _tenant_object(
    session: AsyncSession, model: type[Queue] | type[Prompt], tenant_id: int, object_id: int
) -> int | None:
    found: int | None = await session.scalar(
        select(model.id).where(model.id == object_id, model.tenant_id == tenant_id)
    )
    return found


# ---- lifecycle ------------------------------------------------------------------------------


async def start_campaign(
    session: AsyncSession, scope: Scope, campaign_id: int, *, now: datetime | None = None
) -> Campaign:
    """Start a draft: its list's contacts become pending and the dialer takes it."""
    campaign = await _locked(session, scope.tenant_id, campaign_id)
    if campaign.status != CampaignStatus.DRAFT.value:
        raise _status_conflict(campaign, "started")
    await _ensure_startable(session, campaign)
    added = await _fill_contacts(session, campaign)
    if added == 0:
        raise CannotStart(f"contact list {campaign.list_id} is empty")
    campaign.status = CampaignStatus.RUNNING.value
    campaign.started_at = now or datetime.now(UTC)
    await session.flush()
    await audit.record(session, scope, "start", "campaign", campaign.id, {"contacts": added})
    return campaign


async def pause_campaign(session: AsyncSession, scope: Scope, campaign_id: int) -> Campaign:
    """No new calls until resumed; calls in progress finish."""
    campaign = await _locked(session, scope.tenant_id, campaign_id)
    if campaign.status != CampaignStatus.RUNNING.value:
        raise _status_conflict(campaign, "paused")
    campaign.status = CampaignStatus.PAUSED.value
    await _release_reservations(session, campaign.id)
    await session.flush()
    await audit.record(session, scope, "pause", "campaign", campaign.id, {})
    return campaign


async def resume_campaign(session: AsyncSession, scope: Scope, campaign_id: int) -> Campaign:
    """Back to running; contacts added to the list since it started join it."""
    campaign = await _locked(session, scope.tenant_id, campaign_id)
    if campaign.status != CampaignStatus.PAUSED.value:
        raise _status_conflict(campaign, "resumed")
    await _ensure_startable(session, campaign)
    added = await _fill_contacts(session, campaign)
    campaign.status = CampaignStatus.RUNNING.value
    await session.flush()
    await audit.record(session, scope, "resume", "campaign", campaign.id, {"contacts_added": added})
    return campaign


async def stop_campaign(
    session: AsyncSession, scope: Scope, campaign_id: int, *, now: datetime | None = None
) -> Campaign:
    """End a running or paused campaign for good; calls in progress finish."""
    campaign = await _locked(session, scope.tenant_id, campaign_id)
    if campaign.status not in (CampaignStatus.RUNNING.value, CampaignStatus.PAUSED.value):
        raise _status_conflict(campaign, "stopped")
    campaign.status = CampaignStatus.STOPPED.value
    campaign.ended_at = now or datetime.now(UTC)
    await _release_reservations(session, campaign.id)
    await session.flush()
    await audit.record(session, scope, "stop", "campaign", campaign.id, {})
    return campaign


async def _ensure_startable(session: AsyncSession, campaign: Campaign) -> None:
    status = await session.scalar(select(Tenant.status).where(Tenant.id == campaign.tenant_id))
    if status != TenantStatus.ACTIVE.value:
        raise CannotStart(f"the tenant is {status}: no campaign may call", tenant_status=status)
    if campaign.mode in _AUTOMATED and campaign.abandon_prompt_id is None:
        raise CannotStart(
            f"a {campaign.mode} campaign needs abandon_prompt_id: the law requires a recorded "
            "message naming the caller for calls no agent takes",
            field="abandon_prompt_id",
        )
    if campaign.audience == Audience.CONSUMERS.value:
        # Consumers on the national opposition list may not be called: the tenant checks its
        # numbers with it at least every 30 days (Code de la consommation L223-1, D223-4).
        checked = await blocklists.latest_opposition_date(session, campaign.tenant_id)
        max_age = law.FRANCE.opposition_max_age
        if checked is None or checked < datetime.now(UTC).date() - max_age:
            raise CannotStart(
                "a consumer campaign needs an opposition list (Bloctel) checked within the "
                f"last {max_age.days} days: import one at POST /api/v1/opposition-lists",
                field="audience",
                opposition_list_date=checked.isoformat() if checked else None,
            )


async def _fill_contacts(session: AsyncSession, campaign: Campaign) -> int:
    """Make a pending row for each contact of the list not in the campaign yet."""
    chosen = select(
        literal(campaign.id),
        Contact.id,
        Contact.tenant_id,
        literal(ContactState.PENDING.value),
        literal(0),
        literal({}, type_=CampaignContact.retries_used.type),
    ).where(Contact.list_id == campaign.list_id, Contact.tenant_id == campaign.tenant_id)
    statement = (
        insert(CampaignContact)
        .from_select(
            ["campaign_id", "contact_id", "tenant_id", "state", "attempts", "retries_used"],
            chosen,
        )
        .on_conflict_do_nothing()
    )
    result = await session.execute(statement)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def _release_reservations(session: AsyncSession, campaign_id: int) -> None:
    await session.execute(
        update(CampaignContact)
        .where(CampaignContact.campaign_id == campaign_id, CampaignContact.reserved_by.is_not(None))
        .values(reserved_by=None)
    )


async def _locked(session: AsyncSession, tenant_id: int, campaign_id: int) -> Campaign:
    # Locked: the dialer may end the campaign (finished) at the same moment.
    campaign = await session.scalar(
        select(Campaign)
        .where(Campaign.id == campaign_id, Campaign.tenant_id == tenant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}")
    return campaign


def _status_conflict(campaign: Campaign, verb: str) -> CampaignStatusConflict:
    return CampaignStatusConflict(
        f"campaign {campaign.id} is {campaign.status}: it cannot be {verb}",
        status=campaign.status,
    )


# ---- reading --------------------------------------------------------------------------------


async def list_attempts(
    session: AsyncSession, scope: Scope, campaign_id: int, *, after_id: int | None, limit: int
) -> tuple[list[CampaignAttempt], int | None]:
    """The campaign's calls, oldest first."""
    await get_campaign(session, scope, campaign_id)
    statement = select(CampaignAttempt).where(
        CampaignAttempt.tenant_id == scope.tenant_id, CampaignAttempt.campaign_id == campaign_id
    )
    return await keyset_page(session, statement, CampaignAttempt.id, after_id, limit)


async def list_refusals(
    session: AsyncSession, scope: Scope, campaign_id: int, *, after_id: int | None, limit: int
) -> tuple[list[CallRefusal], int | None]:
    """The campaign's compliance log: every call not placed and the rule that forbade it."""
    await get_campaign(session, scope, campaign_id)
    statement = select(CallRefusal).where(
        CallRefusal.tenant_id == scope.tenant_id, CallRefusal.campaign_id == campaign_id
    )
    return await keyset_page(session, statement, CallRefusal.id, after_id, limit)
