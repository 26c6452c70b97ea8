"""The agent's side of a campaign: the call on screen, its script, the disposition set after
it, and preview mode's reservations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateError, nodes
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.auth.principal import Role, Scope
from graam_pbx.campaigns import law
from graam_pbx.campaigns.dispositions import all_dispositions
from graam_pbx.campaigns.models import (
    Campaign,
    CampaignAttempt,
    CampaignContact,
    CampaignMode,
    CampaignStatus,
    Contact,
    ContactState,
    Disposition,
    Outcome,
)
from graam_pbx.campaigns.schemas.campaigns import DEFAULT_RETRIES
from graam_pbx.db import get_in_tenant
from graam_pbx.errors import Conflict, Forbidden, Invalid, NotFound

# A preview reservation an agent neither dialled nor skipped frees itself after this long.
RESERVATION_TTL = timedelta(minutes=10)
# A skipped contact comes back after the others, no sooner than this.
SKIP_DELAY = timedelta(minutes=15)

# Scripts are written by the tenant's admins and read by its agents in a page: sandboxed (no
# attribute of Python objects reachable), escaped, and a field the contact lacks renders empty.
_SCRIPTS = SandboxedEnvironment(autoescape=True, undefined=ChainableUndefined)
# Rendering runs in the event loop: a script only shows values (no loop, call or test that
# could spin), through a few text filters.
_SCRIPT_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Const,
    nodes.Filter,
)
_SCRIPT_FILTERS = frozenset({"default", "upper", "lower", "title", "capitalize", "trim"})
_SCRIPT_HELP = (
    "a script only shows values: {{ name }}, {{ number }}, {{ region }}, "
    "{{ fields.<column> }}, with the filters " + ", ".join(sorted(_SCRIPT_FILTERS))
)


class NotAnsweredCall(Conflict):
    error_id = "call-not-answered"


class DispositionAlreadySet(Conflict):
    error_id = "disposition-already-set"


class NotReserved(Conflict):
    """Preview: the contact is not reserved for this agent (reserve it with preview/next)."""

    error_id = "contact-not-reserved"


# ---- scripts --------------------------------------------------------------------------------


def script_error(script: str) -> str | None:
    """Why the script is not a valid template, or None."""
    try:
        tree = _SCRIPTS.parse(script)
    except TemplateError as err:
        return f"not a valid script template: {err.message or err}"
    for node in (tree, *tree.find_all(nodes.Node)):
        if not isinstance(node, _SCRIPT_NODES):
            return _SCRIPT_HELP
        if isinstance(node, nodes.Filter) and not _allowed_filter(node):
            return _SCRIPT_HELP
    return None


def _allowed_filter(node: nodes.Filter) -> bool:
    if node.name not in _SCRIPT_FILTERS or node.kwargs or node.dyn_args or node.dyn_kwargs:
        return False
    # default("…") takes its text; the others take nothing.
    most = 1 if node.name == "default" else 0
    return len(node.args) <= most and all(isinstance(arg, nodes.Const) for arg in node.args)


_AS_TEXT = _SCRIPTS.from_string("{{ text }}")


@lru_cache(maxsize=64)
def compiled_script(script: str) -> Template | None:
    """The script checked and compiled once, None when a campaign may not hold it.

    Cached: checking and compiling a long script takes tens of milliseconds of the event loop,
    and the agent's call screen renders it on every poll.
    """
    if script_error(script) is not None:
        return None
    return _SCRIPTS.from_string(script)


def render_script(script: str, contact: Contact) -> str:
    """The script with the contact's name, number and fields, HTML-escaped (a script that is
    not one a campaign may hold is shown as its text)."""
    template = compiled_script(script)
    if template is None:
        return str(_AS_TEXT.render(text=script))
    context: dict[str, Any] = {
        "name": contact.name or "",
        "number": contact.number,
        "region": contact.region,
        "fields": dict(contact.fields or {}),
    }
    try:
        return str(template.render(context))
    except (TemplateError, TypeError, ValueError):
        # A script that only fails on some contact's values: shown unrendered.
        return str(_AS_TEXT.render(text=script))


# ---- the call on the agent's screen ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallScreen:
    attempt: CampaignAttempt
    campaign: Campaign
    contact: Contact
    script: str
    dispositions: list[Disposition]

    @property
    def state(self) -> str:
        return "in_progress" if self.attempt.ended_at is None else "awaiting_disposition"


async def current_call(session: AsyncSession, scope: Scope) -> CallScreen:
    """The caller's campaign call in progress, else the last one awaiting its disposition."""
    attempt = await session.scalar(
        select(CampaignAttempt)
        .where(
            CampaignAttempt.tenant_id == scope.tenant_id,
            CampaignAttempt.agent_user_id == scope.principal.user_id,
            or_(
                CampaignAttempt.ended_at.is_(None),
                and_(
                    CampaignAttempt.outcome == Outcome.ANSWERED.value,
                    CampaignAttempt.disposition_id.is_(None),
                ),
            ),
        )
        .order_by(CampaignAttempt.ended_at.is_not(None), CampaignAttempt.placed_at.desc())
        .limit(1)
    )
    if attempt is None:
        raise NotFound("no campaign call in progress or awaiting its disposition")
    campaign = await get_in_tenant(session, Campaign, scope.tenant_id, attempt.campaign_id)
    contact = await get_in_tenant(session, Contact, scope.tenant_id, attempt.contact_id)
    return CallScreen(
        attempt=attempt,
        campaign=campaign,
        contact=contact,
        script=render_script(campaign.script, contact),
        dispositions=await all_dispositions(session, scope.tenant_id),
    )


async def set_disposition(
    session: AsyncSession,
    scope: Scope,
    attempt_id: int,
    disposition_id: int,
    *,
    now: datetime | None = None,
) -> tuple[CampaignAttempt, CampaignContact]:
    """Record what came of an answered call, once it ended, and what becomes of the contact:
    refused: done (and the number blocked tenant-wide for the law's period); machine: the
    attempt counts as a machine and the machine retry rule applies; callback: called again
    after the no-answer delay while retries remain; any other: done."""
    now = now or datetime.now(UTC)
    attempt = await session.scalar(
        select(CampaignAttempt)
        .where(CampaignAttempt.id == attempt_id, CampaignAttempt.tenant_id == scope.tenant_id)
        .with_for_update()
    )
    if attempt is None:
        raise NotFound(f"no campaign call {attempt_id}")
    if scope.role is Role.AGENT and attempt.agent_user_id != scope.principal.user_id:
        raise Forbidden("only the agent who took the call sets its disposition")
    disposition = await session.scalar(
        select(Disposition).where(
            Disposition.id == disposition_id, Disposition.tenant_id == scope.tenant_id
        )
    )
    if disposition is None:
        raise Invalid("body.disposition_id", f"no disposition {disposition_id} in this tenant")
    if attempt.disposition_id is not None:
        raise DispositionAlreadySet(f"call {attempt_id} already has its disposition")
    if attempt.outcome != Outcome.ANSWERED.value:
        if attempt.ended_at is None:
            raise NotAnsweredCall(
                f"call {attempt_id} is still in progress: set its disposition once it ends"
            )
        raise NotAnsweredCall(
            f"call {attempt_id} ended as {attempt.outcome}: only a call an agent answered "
            "takes a disposition",
            outcome=attempt.outcome,
        )
    contact = await session.scalar(
        select(CampaignContact)
        .where(
            CampaignContact.campaign_id == attempt.campaign_id,
            CampaignContact.contact_id == attempt.contact_id,
        )
        .with_for_update()
    )
    if contact is None:  # the attempt's campaign row always exists (cascade deletes both)
        raise NotFound(f"no contact {attempt.contact_id} in campaign {attempt.campaign_id}")
    attempt.disposition_id = disposition.id
    attempt.disposition_at = now
    contact.disposition_id = disposition.id
    contact.updated_at = now
    if disposition.refusal:
        _done(contact, law.RULE_REFUSED_RECENTLY)
    elif disposition.machine:
        attempt.outcome = Outcome.MACHINE.value
        contact.last_outcome = Outcome.MACHINE.value
        campaign = await session.get_one(Campaign, attempt.campaign_id)
        _retry(contact, campaign, Outcome.MACHINE.value, now)
    elif disposition.callback:
        campaign = await session.get_one(Campaign, attempt.campaign_id)
        _retry(contact, campaign, Outcome.NO_ANSWER.value, now)
    else:
        _done(contact, None)
    await session.flush()
    return attempt, contact


def _done(contact: CampaignContact, rule: str | None) -> None:
    contact.state = ContactState.DONE.value
    contact.next_attempt_at = None
    contact.last_rule = rule
    contact.reserved_by = None


def _retry(contact: CampaignContact, campaign: Campaign, outcome: str, now: datetime) -> None:
    """Back to pending after the outcome's delay while its retries remain, else done."""
    rule = campaign.retries.get(outcome) or DEFAULT_RETRIES[outcome]
    used = dict(contact.retries_used or {})
    if used.get(outcome, 0) >= int(rule["max"]):
        _done(contact, None)
        return
    used[outcome] = used.get(outcome, 0) + 1
    contact.retries_used = used
    contact.state = ContactState.PENDING.value
    contact.next_attempt_at = now + timedelta(seconds=int(rule["delay_seconds"]))
    contact.last_rule = None
    contact.reserved_by = None


# ---- preview --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reserved:
    campaign: Campaign
    row: CampaignContact
    contact: Contact
    script: str


async def reserve_next(
    session: AsyncSession, scope: Scope, campaign_id: int, *, now: datetime | None = None
) -> Reserved:
    """The next contact due in a running preview campaign, reserved for the caller (the one
    already reserved for it, if any)."""
    now = now or datetime.now(UTC)
    campaign = await _preview_campaign(session, scope, campaign_id)
    user_id = scope.principal.user_id
    due = select(CampaignContact).where(
        CampaignContact.campaign_id == campaign.id,
        CampaignContact.state == ContactState.PENDING.value,
    )
    row = await session.scalar(
        due.where(CampaignContact.reserved_by == user_id).with_for_update().limit(1)
    )
    if row is None:
        # SKIP LOCKED: two agents asking at once get two different contacts.
        row = await session.scalar(
            due.where(
                or_(
                    CampaignContact.next_attempt_at.is_(None),
                    CampaignContact.next_attempt_at <= now,
                ),
                or_(
                    CampaignContact.reserved_by.is_(None),
                    CampaignContact.updated_at < now - RESERVATION_TTL,
                ),
            )
            .order_by(
                CampaignContact.next_attempt_at.asc().nulls_first(), CampaignContact.contact_id
            )
            .limit(1)
            .with_for_update(skip_locked=True)
        )
    if row is None:
        raise NotFound(f"no contact of campaign {campaign_id} to call now")
    row.reserved_by = user_id
    row.updated_at = now
    await session.flush()
    contact = await session.get_one(Contact, row.contact_id)
    return Reserved(campaign, row, contact, render_script(campaign.script, contact))


async def ensure_reserved(
    session: AsyncSession, scope: Scope, campaign_id: int, contact_id: int, *, lock: bool = True
) -> CampaignContact:
    """The campaign's contact, if reserved for the caller (before dialling or skipping it)."""
    campaign = await _preview_campaign(session, scope, campaign_id)
    statement = select(CampaignContact).where(
        CampaignContact.campaign_id == campaign.id, CampaignContact.contact_id == contact_id
    )
    row = await session.scalar(statement.with_for_update() if lock else statement)
    if row is None:
        raise NotFound(f"no contact {contact_id} in campaign {campaign_id}")
    if row.reserved_by != scope.principal.user_id or row.state != ContactState.PENDING.value:
        raise NotReserved(
            f"contact {contact_id} is not reserved for you: ask for it with preview/next"
        )
    return row


async def skip_contact(
    session: AsyncSession,
    scope: Scope,
    campaign_id: int,
    contact_id: int,
    *,
    now: datetime | None = None,
) -> None:
    """Give a reserved contact back; it comes again after the others."""
    now = now or datetime.now(UTC)
    row = await ensure_reserved(session, scope, campaign_id, contact_id)
    row.reserved_by = None
    row.next_attempt_at = now + SKIP_DELAY
    row.updated_at = now
    await session.flush()


async def _preview_campaign(session: AsyncSession, scope: Scope, campaign_id: int) -> Campaign:
    campaign = await get_in_tenant(session, Campaign, scope.tenant_id, campaign_id)
    if campaign.mode != CampaignMode.PREVIEW.value:
        raise Conflict(
            f"campaign {campaign_id} is {campaign.mode}, not preview", mode=campaign.mode
        )
    if campaign.status != CampaignStatus.RUNNING.value:
        raise Conflict(f"campaign {campaign_id} is {campaign.status}", status=campaign.status)
    return campaign
