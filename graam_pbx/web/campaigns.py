"""Outbound campaign pages: the campaigns (create, start, pause, resume, stop, progress and
statistics), the contact lists (create, CSV import and its report, do-not-call entries, the
opposition list), and the agent's campaign call (contact, script, dispositions, preview).

Every read and change is a ``campaigns`` service function the API's routes call too
(``/api/v1/campaigns``, ``/api/v1/contact-lists``, ``/api/v1/campaign-calls``…), with the
viewer's tenant scope; the forms' input is checked by the API's own schemas. Admins manage,
supervisors read and start, pause, resume or stop; agents see their own campaign call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Final

from fastapi import BackgroundTasks, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from graam_pbx.auth.principal import Role
from graam_pbx.campaigns import blocklists, calls, contacts, dispositions, imports, stats
from graam_pbx.campaigns import service as campaigns_service
from graam_pbx.campaigns.models import (
    Audience,
    Campaign,
    CampaignMode,
    CampaignStatus,
    Contact,
    ContactState,
    MachineAction,
    Outcome,
)
from graam_pbx.campaigns.schemas.campaigns import CampaignCreate
from graam_pbx.campaigns.schemas.contacts import ContactListCreate, DoNotCallCreate
from graam_pbx.deps import DbSession
from graam_pbx.errors import Conflict, GraamError, Invalid, NotFound, Unavailable
from graam_pbx.fields import MAX_ID
from graam_pbx.numbers import service as numbers_service
from graam_pbx.prompts import service as prompts_service
from graam_pbx.queues import service as queues_service
from graam_pbx.rest import every_page
from graam_pbx.web.i18n import _
from graam_pbx.web.render import SECURITY_HEADERS, form_errors, page
from graam_pbx.web.viewer import (
    AdminViewer,
    AgentViewer,
    Supervising,
    Viewer,
    console_router,
)

router = console_router()

PAGE_ROWS: Final = 100
REPORT_ROWS: Final = 20  # refused rows of an import shown on the page (the API pages them all)
REFUSAL_ROWS: Final = 20  # the latest refusals to call shown on a campaign's page
CampaignId = Annotated[int, Path(ge=1, le=MAX_ID)]
ContactId = Annotated[int, Path(ge=1, le=MAX_ID)]
AttemptId = Annotated[int, Path(ge=1, le=MAX_ID)]
EntryId = Annotated[int, Path(ge=1, le=MAX_ID)]
# Generous bounds for the raw form: the schema then says precisely what is wrong.
ShortForm = Annotated[str, Form(max_length=1000)]
ScriptForm = Annotated[str, Form(max_length=100_000)]

MODE_LABELS: Final = {
    CampaignMode.PREVIEW.value: _("Preview"),
    CampaignMode.PROGRESSIVE.value: _("Progressive"),
    CampaignMode.PREDICTIVE.value: _("Predictive"),
}
STATUS_LABELS: Final = {
    CampaignStatus.DRAFT.value: _("Draft"),
    CampaignStatus.RUNNING.value: _("Running"),
    CampaignStatus.PAUSED.value: _("Paused"),
    CampaignStatus.STOPPED.value: _("Stopped"),
    CampaignStatus.FINISHED.value: _("Finished"),
}
AUDIENCE_LABELS: Final = {
    Audience.CONSUMERS.value: _("Consumers"),
    Audience.BUSINESSES.value: _("Businesses"),
}
MACHINE_LABELS: Final = {
    MachineAction.HANGUP.value: _("Hang up"),
    MachineAction.MESSAGE.value: _("Leave the recorded message"),
}
STATE_LABELS: Final = {
    ContactState.PENDING.value: _("To call"),
    ContactState.DIALING.value: _("Dialling"),
    ContactState.DONE.value: _("Done"),
    ContactState.BLOCKED.value: _("Blocked"),
}
OUTCOME_LABELS: Final = {
    Outcome.ANSWERED.value: _("Answered"),
    Outcome.ABANDONED.value: _("Abandoned"),
    Outcome.MACHINE.value: _("Answering machine"),
    Outcome.NO_ANSWER.value: _("No answer"),
    Outcome.BUSY.value: _("Busy"),
    Outcome.FAILED.value: _("Failed"),
    Outcome.LOST.value: _("Lost"),
}
RULE_LABELS: Final = {
    "calling-hours": _("Outside the legal calling hours"),
    "public-holiday": _("Public holiday"),
    "campaign-hours": _("Outside the campaign's hours"),
    "max-attempts": _("Four attempts in 30 days already"),
    "refused-recently": _("Refused to be called less than 60 days ago"),
    "do-not-call": _("On the do-not-call list"),
    "opposition-list": _("On the opposition list (Bloctel)"),
    "opposition-list-stale": _("The opposition list is older than 30 days"),
    "consent-missing": _("No recorded consent"),
    "tenant-suspended": _("Account suspended"),
    "destination-not-allowed": _("Destination not allowed"),
}
# The default catalogue's labels (dispositions.DEFAULT_CATALOGUE), translated when shown; a
# tenant's own labels are shown as written.
DEFAULT_DISPOSITION_LABELS: Final = (
    _("Interested"),
    _("Call back"),
    _("Not interested"),
    _("Refuses to be called"),
    _("Wrong number"),
    _("Answering machine"),
)
# Which actions each status offers (the service refuses the others with a 409 anyway).
ACTIONS: Final = {
    CampaignStatus.DRAFT.value: ("start",),
    CampaignStatus.RUNNING.value: ("pause", "stop"),
    CampaignStatus.PAUSED.value: ("resume", "stop"),
    CampaignStatus.STOPPED.value: (),
    CampaignStatus.FINISHED.value: (),
}
ACTION_LABELS: Final = {
    "start": _("Start"),
    "pause": _("Pause"),
    "resume": _("Resume"),
    "stop": _("Stop"),
}
DONE_TEXTS: Final = {
    "created": _("The campaign was created."),
    "start": _("The campaign was started."),
    "pause": _("The campaign was paused: calls in progress finish."),
    "resume": _("The campaign was resumed."),
    "stop": _("The campaign was stopped: calls in progress finish."),
}
CAMPAIGN_FIELDS: Final = (
    "name",
    "list_id",
    "queue_id",
    "caller_id_number_id",
    "mode",
    "audience",
    "require_consent",
    "ring_seconds",
    "max_channels",
    "amd_enabled",
    "machine_action",
    "machine_prompt_id",
    "abandon_prompt_id",
    "abandon_target",
    "script",
)


def labels_of(viewer: Viewer, labels: dict[str, str]) -> dict[str, str]:
    """A table of labels in the viewer's language."""
    return {key: viewer.texts.gettext(text) for key, text in labels.items()}


def campaign_rules(viewer: Viewer) -> dict[str, str]:
    """What each field of the campaign form accepts, said when it is refused."""
    gettext = viewer.texts.gettext
    return {
        "name": gettext("1 to 64 characters: a-z, 0-9, '_' and '-'."),
        "list_id": gettext("Choose one of your contact lists."),
        "queue_id": gettext("Choose one of your queues."),
        "caller_id_number_id": gettext("Choose one of your numbers."),
        "mode": gettext("Choose preview, progressive or predictive."),
        "audience": gettext("Choose consumers or businesses."),
        "ring_seconds": gettext("15 to 120 seconds: the law asks for 15 at least."),
        "max_channels": gettext("1 to 1,000 calls at once."),
        "machine_action": gettext("Choose hang up or leave the message."),
        "machine_prompt_id": gettext("Choose one of your prompts."),
        "abandon_prompt_id": gettext("Choose one of your prompts."),
        "abandon_target": gettext("A rate above 0 and at most 0.03 (3 %)."),
        "script": gettext("The script could not be read."),
    }


def _field_of(error: Invalid) -> str:
    """The form field a service's ``Invalid`` names (``body.queue_id`` is ``queue_id``)."""
    errors = error.details.get("errors") or [{}]
    field = str(errors[0].get("field", ""))
    return field.rsplit(".", 1)[-1]


def _reason_of(error: Invalid) -> str:
    errors = error.details.get("errors") or [{}]
    return str(errors[0].get("reason", error.message))


def _optional_id(raw: str) -> int | str | None:
    """A select's value: empty is none, else the id as typed (the schema checks it)."""
    raw = raw.strip()
    return None if not raw else int(raw) if raw.isdecimal() and len(raw) <= 19 else raw


# ---- campaigns ----------------------------------------------------------------------------


async def _choices(session: DbSession, viewer: Viewer) -> dict[str, Any]:
    """The tenant's lists, queues, numbers and prompts the campaign form offers."""
    scope = viewer.scope
    return {
        "lists": await every_page(
            lambda after: contacts.list_lists(session, scope, after_id=after, limit=PAGE_ROWS)
        ),
        "queues": await every_page(
            lambda after: queues_service.list_queues(
                session, scope, after_id=after, limit=PAGE_ROWS
            )
        ),
        "numbers": await every_page(
            lambda after: numbers_service.list_numbers(
                session,
                scope,
                country=None,
                number_type=None,
                status=None,
                after_id=after,
                limit=PAGE_ROWS,
            )
        ),
        "prompts": await every_page(
            lambda after: prompts_service.list_prompts(
                session, scope, after_id=after, limit=PAGE_ROWS
            )
        ),
    }


async def campaigns_page(
    request: Request,
    viewer: Viewer,
    session: DbSession,
    *,
    status: int = 200,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    done: str | None = None,
    problem: str | None = None,
) -> Response:
    scope = viewer.scope
    rows, more = await campaigns_service.list_campaigns(
        session, scope, after_id=None, limit=PAGE_ROWS
    )
    progress = {row.id: await stats.progress(session, row.id) for row in rows}
    can_manage = viewer.role in (Role.ADMIN, Role.OPERATOR)
    return page(
        request,
        viewer,
        "campaigns.html",
        status=status,
        title=viewer.texts.gettext("Campaigns"),
        campaigns=rows,
        more=more is not None,
        progress=progress,
        can_manage=can_manage,
        choices=await _choices(session, viewer) if can_manage else {},
        actions=ACTIONS,
        action_labels=labels_of(viewer, ACTION_LABELS),
        modes=labels_of(viewer, MODE_LABELS),
        statuses=labels_of(viewer, STATUS_LABELS),
        audiences=labels_of(viewer, AUDIENCE_LABELS),
        machine_actions=labels_of(viewer, MACHINE_LABELS),
        typed=typed
        or {
            "mode": CampaignMode.PROGRESSIVE.value,
            "audience": Audience.CONSUMERS.value,
            "ring_seconds": "25",
            "max_channels": "10",
            "machine_action": MachineAction.HANGUP.value,
            "abandon_target": "0.025",
        },
        errors=errors or {},
        done=done,
        problem=problem,
    )


@router.get("/campaigns")
async def campaigns_list(
    request: Request,
    viewer: Supervising,
    session: DbSession,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    text = DONE_TEXTS.get(done or "")
    return await campaigns_page(
        request, viewer, session, done=viewer.texts.gettext(text) if text else None
    )


@router.post("/campaigns")
async def create_campaign(
    request: Request,
    viewer: AdminViewer,
    session: DbSession,
    name: ShortForm = "",
    list_id: ShortForm = "",
    queue_id: ShortForm = "",
    caller_id_number_id: ShortForm = "",
    mode: ShortForm = "",
    audience: ShortForm = "",
    require_consent: ShortForm = "",
    ring_seconds: ShortForm = "",
    max_channels: ShortForm = "",
    amd_enabled: ShortForm = "",
    machine_action: ShortForm = "",
    machine_prompt_id: ShortForm = "",
    abandon_prompt_id: ShortForm = "",
    abandon_target: ShortForm = "",
    script: ScriptForm = "",
) -> Response:
    typed = {
        "name": name,
        "list_id": list_id,
        "queue_id": queue_id,
        "caller_id_number_id": caller_id_number_id,
        "mode": mode,
        "audience": audience,
        "require_consent": require_consent,
        "ring_seconds": ring_seconds,
        "max_channels": max_channels,
        "amd_enabled": amd_enabled,
        "machine_action": machine_action,
        "machine_prompt_id": machine_prompt_id,
        "abandon_prompt_id": abandon_prompt_id,
        "abandon_target": abandon_target,
        "script": script,
    }
    raw: dict[str, Any] = {
        "name": name.strip(),
        "list_id": _optional_id(list_id),
        "queue_id": _optional_id(queue_id),
        "caller_id_number_id": _optional_id(caller_id_number_id),
        "mode": mode,
        "audience": audience,
        "require_consent": require_consent == "on",
        "amd_enabled": amd_enabled == "on",
        "machine_action": machine_action,
        "machine_prompt_id": _optional_id(machine_prompt_id),
        "abandon_prompt_id": _optional_id(abandon_prompt_id),
        "script": script,
    }
    # Left out when empty: the schema's defaults apply, as for the API.
    for key, value in (("ring_seconds", ring_seconds), ("max_channels", max_channels)):
        if value.strip():
            raw[key] = _optional_id(value)
    if abandon_target.strip():
        raw["abandon_target"] = abandon_target.strip()
    refused: dict[str, str] = {}
    try:
        data = CampaignCreate.model_validate(raw)
    except ValidationError as err:
        refused = form_errors(err, campaign_rules(viewer))
        if not refused:
            refused = {"name": str(err.errors()[0].get("msg", ""))}
    else:
        try:
            async with session.begin_nested():
                created = await campaigns_service.create_campaign(session, viewer.scope, data)
        except Invalid as err:
            field = _field_of(err)
            refused = {field if field in CAMPAIGN_FIELDS else "name": _reason_of(err)}
        except Conflict as err:
            refused = {"name": err.message}
        else:
            return RedirectResponse(
                viewer.link(f"/campaigns/{created.id}", done="created"), status_code=303
            )
    return await campaigns_page(request, viewer, session, status=422, typed=typed, errors=refused)


REFUSALS_READ: Final = 2000  # refusals summarised by rule on the page (the API pages them all)


async def _refusals(
    session: DbSession, viewer: Viewer, campaign_id: int
) -> tuple[list[Any], dict[str, int], bool]:
    """The compliance log's first refusals by rule, the latest of them, and whether there are
    more than were read."""
    rows: list[Any] = []
    after: int | None = None
    while len(rows) < REFUSALS_READ:
        found, after = await campaigns_service.list_refusals(
            session, viewer.scope, campaign_id, after_id=after, limit=500
        )
        rows.extend(found)
        if after is None:
            break
    by_rule: dict[str, int] = {}
    for row in rows:
        by_rule[row.rule] = by_rule.get(row.rule, 0) + 1
    return rows[-REFUSAL_ROWS:][::-1], by_rule, after is not None


async def campaign_page(
    request: Request,
    viewer: Viewer,
    session: DbSession,
    campaign_id: int,
    *,
    status: int = 200,
    done: str | None = None,
    problem: str | None = None,
) -> Response:
    scope = viewer.scope
    # Through the service's tenant check first: the statistics take the campaign's id alone.
    found = await campaigns_service.get_campaign(session, scope, campaign_id)
    figures = await stats.campaign_figures(session, campaign_id, datetime.now(UTC))
    refusals, by_rule, more_refusals = await _refusals(session, viewer, campaign_id)
    names = {
        item.code: item.label
        for item in await dispositions.all_dispositions(session, scope.tenant_id)
    }
    return page(
        request,
        viewer,
        "campaign.html",
        status=status,
        title=viewer.texts.gettext("Campaign {name}", name=found.name),
        campaign=found,
        progress=await stats.progress(session, campaign_id),
        figures=figures,
        refusals=refusals,
        refusals_by_rule=by_rule,
        more_refusals=more_refusals,
        disposition_names=names,
        actions=ACTIONS[found.status],
        action_labels=labels_of(viewer, ACTION_LABELS),
        modes=labels_of(viewer, MODE_LABELS),
        statuses=labels_of(viewer, STATUS_LABELS),
        states=labels_of(viewer, STATE_LABELS),
        outcomes=labels_of(viewer, OUTCOME_LABELS),
        rules=labels_of(viewer, RULE_LABELS),
        audiences=labels_of(viewer, AUDIENCE_LABELS),
        done=done,
        problem=problem,
    )


@router.get("/campaigns/{campaign_id}")
async def campaign_detail(
    request: Request,
    viewer: Supervising,
    session: DbSession,
    campaign_id: CampaignId,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    text = DONE_TEXTS.get(done or "")
    return await campaign_page(
        request,
        viewer,
        session,
        campaign_id,
        done=viewer.texts.gettext(text) if text else None,
    )


@router.post("/campaigns/{campaign_id}/{action}")
async def campaign_action(
    request: Request,
    viewer: Supervising,
    session: DbSession,
    campaign_id: CampaignId,
    action: Annotated[str, Path(pattern="^(start|pause|resume|stop)$")],
    back: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    change = {
        "start": campaigns_service.start_campaign,
        "pause": campaigns_service.pause_campaign,
        "resume": campaigns_service.resume_campaign,
        "stop": campaigns_service.stop_campaign,
    }[action]
    try:
        async with session.begin_nested():
            await change(session, viewer.scope, campaign_id)
    except Conflict as err:
        return await campaign_page(
            request, viewer, session, campaign_id, status=409, problem=err.message
        )
    background = BackgroundTasks()
    dialer = getattr(request.app.state.runtime, "dialer", None)
    if dialer is not None and action in ("start", "resume"):
        # Once the response is ready, so after the commit: the dialer dials now, not at its
        # next tick.
        background.add_task(dialer.request)
    target = "/campaigns" if back == "list" else f"/campaigns/{campaign_id}"
    return RedirectResponse(
        viewer.link(target, done=action), status_code=303, background=background
    )


# ---- contact lists, do-not-call, opposition lists -----------------------------------------


def list_rules(viewer: Viewer) -> dict[str, str]:
    gettext = viewer.texts.gettext
    return {
        "name": gettext("1 to 64 characters."),
        "default_region": gettext("Two letters: the country's ISO code (FR)."),
        "number": gettext("A phone number (0612345678 or +33612345678)."),
        "reason": gettext("At most 200 characters."),
        "list_date": gettext("The date Bloctel checked the list."),
        "file": gettext("Choose a file."),
        "list_id": gettext("Choose one of your contact lists."),
    }


async def lists_page(
    request: Request,
    viewer: Viewer,
    session: DbSession,
    *,
    status: int = 200,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    report_id: int | None = None,
    report_list: int | None = None,
    done: str | None = None,
) -> Response:
    scope = viewer.scope
    lists, more_lists = await contacts.list_lists(session, scope, after_id=None, limit=PAGE_ROWS)
    report = None
    report_rows: list[Any] = []
    if report_id is not None and report_list is not None:
        report = await imports.get_import(session, scope, report_list, report_id)
        report_rows, _next = await imports.list_refusals(
            session, scope, report_list, report_id, after_line=None, limit=REPORT_ROWS
        )
    entries, more_entries = await blocklists.list_do_not_call(
        session, scope, after_id=None, limit=PAGE_ROWS
    )
    oppositions, _more = await blocklists.list_opposition_lists(
        session, scope, after_id=None, limit=PAGE_ROWS
    )
    return page(
        request,
        viewer,
        "campaigns_lists.html",
        status=status,
        title=viewer.texts.gettext("Contact lists"),
        lists=lists,
        more_lists=more_lists is not None,
        sizes=await contacts.contact_counts(session, [item.id for item in lists]),
        report=report,
        report_rows=report_rows,
        entries=entries,
        more_entries=more_entries is not None,
        oppositions=oppositions,
        typed=typed or {"default_region": "FR"},
        errors=errors or {},
        done=done,
    )


@router.get("/contact-lists")
async def contact_lists(
    request: Request,
    viewer: AdminViewer,
    session: DbSession,
    report: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    list_id: Annotated[int | None, Query(alias="list", ge=1, le=MAX_ID)] = None,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    texts = {
        "list": _("The list was created."),
        "entry": _("The number was added to the do-not-call list."),
        "removed": _("The number was removed from the do-not-call list."),
        "opposition": _("The opposition list was imported."),
    }
    text = texts.get(done or "")
    return await lists_page(
        request,
        viewer,
        session,
        report_id=report,
        report_list=list_id,
        done=viewer.texts.gettext(text) if text else None,
    )


@router.post("/contact-lists")
async def create_list(
    request: Request,
    viewer: AdminViewer,
    session: DbSession,
    name: ShortForm = "",
    default_region: ShortForm = "",
) -> Response:
    typed = {"name": name, "default_region": default_region}
    try:
        data = ContactListCreate.model_validate(
            {"name": name.strip(), "default_region": default_region.strip().upper() or "FR"}
        )
        async with session.begin_nested():
            await contacts.create_list(session, viewer.scope, data)
    except ValidationError as err:
        refused = form_errors(err, list_rules(viewer)) or {"name": list_rules(viewer)["name"]}
        return await lists_page(request, viewer, session, status=422, typed=typed, errors=refused)
    except (Invalid, Conflict) as err:
        reason = _reason_of(err) if isinstance(err, Invalid) else err.message
        return await lists_page(
            request, viewer, session, status=err.status_code, typed=typed, errors={"name": reason}
        )
    return RedirectResponse(viewer.link("/contact-lists", done="list"), status_code=303)


@router.post("/contact-lists/imports")
async def import_contacts(
    request: Request,
    viewer: AdminViewer,
    session: DbSession,
    list_id: ShortForm = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    chosen = _optional_id(list_id)
    errors: dict[str, str] = {}
    if not isinstance(chosen, int):
        errors["list_id"] = list_rules(viewer)["list_id"]
    if file is None or not file.filename:
        errors["file"] = list_rules(viewer)["file"]
    if errors or file is None or not isinstance(chosen, int):
        return await lists_page(
            request, viewer, session, status=422, typed={"list_id": list_id}, errors=errors
        )
    try:
        async with session.begin_nested():
            target = await contacts.get_list(session, viewer.scope, chosen)
            done = await imports.import_csv(
                session, viewer.scope, target, file.filename or "contacts.csv", file.file
            )
    except Invalid as err:
        field = "list_id" if _field_of(err) in ("list_id", "list") else "file"
        return await lists_page(
            request,
            viewer,
            session,
            status=422,
            typed={"list_id": list_id},
            errors={field: _reason_of(err)},
        )
    return RedirectResponse(
        viewer.link("/contact-lists", list=chosen, report=done.id) + "#import-report",
        status_code=303,
    )


@router.post("/do-not-call")
async def add_do_not_call(
    request: Request,
    viewer: AdminViewer,
    session: DbSession,
    number: ShortForm = "",
    reason: ShortForm = "",
) -> Response:
    typed = {"number": number, "reason": reason}
    try:
        data = DoNotCallCreate.model_validate(
            {"number": number.strip(), "reason": reason.strip() or None}
        )
        async with session.begin_nested():
            await blocklists.add_do_not_call(session, viewer.scope, data)
    except ValidationError as err:
        refused = form_errors(err, list_rules(viewer)) or {"number": list_rules(viewer)["number"]}
        return await lists_page(request, viewer, session, status=422, typed=typed, errors=refused)
    except (Invalid, Conflict) as err:
        reason_text = _reason_of(err) if isinstance(err, Invalid) else err.message
        return await lists_page(
            request,
            viewer,
            session,
            status=err.status_code,
            typed=typed,
            errors={"number": reason_text},
        )
    return RedirectResponse(viewer.link("/contact-lists", done="entry"), status_code=303)


@router.post("/do-not-call/{entry_id}/delete")
async def remove_do_not_call(
    viewer: AdminViewer, session: DbSession, entry_id: EntryId
) -> Response:
    await blocklists.delete_do_not_call(session, viewer.scope, entry_id)
    return RedirectResponse(viewer.link("/contact-lists", done="removed"), status_code=303)


@router.post("/opposition-lists")
async def import_opposition(
    request: Request,
    viewer: AdminViewer,
    session: DbSession,
    list_date: ShortForm = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    errors: dict[str, str] = {}
    checked: date | None = None
    try:
        checked = date.fromisoformat(list_date.strip())
    except ValueError:
        errors["list_date"] = list_rules(viewer)["list_date"]
    if file is None or not file.filename:
        errors["opposition_file"] = list_rules(viewer)["file"]
    if errors or checked is None or file is None:
        return await lists_page(
            request, viewer, session, status=422, typed={"list_date": list_date}, errors=errors
        )
    try:
        async with session.begin_nested():
            await blocklists.import_opposition_list(
                session, viewer.scope, checked, file.filename or "bloctel.csv", file.file
            )
    except Invalid as err:
        field = "list_date" if _field_of(err) == "list_date" else "opposition_file"
        return await lists_page(
            request,
            viewer,
            session,
            status=422,
            typed={"list_date": list_date},
            errors={field: _reason_of(err)},
        )
    return RedirectResponse(viewer.link("/contact-lists", done="opposition"), status_code=303)


# ---- the agent's campaign call ------------------------------------------------------------


@dataclass(frozen=True)
class PreviewCard:
    """A contact reserved for the agent in a preview campaign, as the screen shows it."""

    campaign: Campaign
    contact: Contact
    attempts: int
    last_outcome: str | None
    script: Markup


def call_key(current: calls.CallScreen | None, reserved: PreviewCard | None) -> str:
    """What the call screen shows, in a few characters: the page's script reloads the page
    when it changes (a call came, ended, or its result was set)."""
    if current is not None:
        return f"call-{current.attempt.id}-{current.state}"
    if reserved is not None:
        return f"preview-{reserved.campaign.id}-{reserved.contact.id}"
    return "none"


async def _current(session: DbSession, viewer: Viewer) -> calls.CallScreen | None:
    try:
        return await calls.current_call(session, viewer.scope)
    except NotFound:
        return None


async def _reserved(
    session: DbSession, viewer: Viewer, campaign_id: int | None, contact_id: int | None
) -> PreviewCard | None:
    """The contact the agent asked for (``?campaign=&contact=``) while it is still theirs."""
    if campaign_id is None or contact_id is None:
        return None
    scope = viewer.scope
    try:
        async with session.begin_nested():
            row = await calls.ensure_reserved(session, scope, campaign_id, contact_id)
            found = await campaigns_service.get_campaign(session, scope, campaign_id)
            contact = await contacts.get_contact(session, scope, found.list_id, contact_id)
    except (NotFound, Conflict):
        return None  # dialled, skipped, or taken back since
    return PreviewCard(
        campaign=found,
        contact=contact,
        attempts=row.attempts,
        last_outcome=row.last_outcome,
        # render_script escapes the contact's values: the result is HTML.
        script=Markup(calls.render_script(found.script, contact)),  # noqa: S704
    )


async def _previews(session: DbSession, viewer: Viewer) -> list[Campaign]:
    """The tenant's running preview campaigns, where the agent may ask for a contact."""
    rows, _next = await campaigns_service.list_campaigns(
        session, viewer.scope, after_id=None, limit=PAGE_ROWS
    )
    return [
        row
        for row in rows
        if row.mode == CampaignMode.PREVIEW.value and row.status == CampaignStatus.RUNNING.value
    ]


async def call_page(
    request: Request,
    viewer: Viewer,
    session: DbSession,
    *,
    campaign_id: int | None = None,
    contact_id: int | None = None,
    status: int = 200,
    done: str | None = None,
    problem: str | None = None,
) -> Response:
    current = await _current(session, viewer)
    reserved = (
        None if current is not None else await _reserved(session, viewer, campaign_id, contact_id)
    )
    picked = {"campaign": campaign_id, "contact": contact_id} if reserved else {}
    return page(
        request,
        viewer,
        "campaign_call.html",
        status=status,
        title=viewer.texts.gettext("Campaign call"),
        call=current,
        # render_script escapes the contact's values: the result is HTML.
        script=Markup(current.script) if current is not None else None,  # noqa: S704
        reserved=reserved,
        previews=await _previews(session, viewer) if current is None else [],
        key=call_key(current, reserved),
        state_url=viewer.link("/campaign-call/state", **picked),
        outcomes=labels_of(viewer, OUTCOME_LABELS),
        done=done,
        problem=problem,
    )


OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
CALL_DONE_TEXTS: Final = {
    "disposition": _("The call's result was saved."),
    "dial": _("Dialling the contact…"),
    "skip": _("The contact was skipped."),
}


@router.get("/campaign-call")
async def campaign_call(
    request: Request,
    viewer: AgentViewer,
    session: DbSession,
    campaign: OptionalId = None,
    contact: OptionalId = None,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    text = CALL_DONE_TEXTS.get(done or "")
    return await call_page(
        request,
        viewer,
        session,
        campaign_id=campaign,
        contact_id=contact,
        done=viewer.texts.gettext(text) if text else None,
    )


@router.get("/campaign-call/state", response_class=JSONResponse)
async def campaign_call_state(
    viewer: AgentViewer,
    session: DbSession,
    campaign: OptionalId = None,
    contact: OptionalId = None,
) -> Response:
    """What the call screen shows, as a short key its script compares (polled)."""
    current = await _current(session, viewer)
    reserved = None if current is not None else await _reserved(session, viewer, campaign, contact)
    return JSONResponse({"key": call_key(current, reserved)}, headers=SECURITY_HEADERS)


def _problem(err: GraamError) -> str:
    return _reason_of(err) if isinstance(err, Invalid) else err.message


@router.post("/campaign-call/{attempt_id}/disposition")
async def set_disposition(
    request: Request,
    viewer: AgentViewer,
    session: DbSession,
    attempt_id: AttemptId,
    disposition_id: ShortForm = "",
) -> Response:
    chosen = _optional_id(disposition_id)
    try:
        if not isinstance(chosen, int):
            raise Invalid("disposition_id", viewer.texts.gettext("Choose the call's result."))
        async with session.begin_nested():
            await calls.set_disposition(session, viewer.scope, attempt_id, chosen)
    except (Invalid, Conflict) as err:
        return await call_page(
            request, viewer, session, status=err.status_code, problem=_problem(err)
        )
    return RedirectResponse(viewer.link("/campaign-call", done="disposition"), status_code=303)


@router.post("/campaign-call/preview/{campaign_id}/next")
async def preview_next(
    request: Request, viewer: AgentViewer, session: DbSession, campaign_id: CampaignId
) -> Response:
    try:
        async with session.begin_nested():
            reserved = await calls.reserve_next(session, viewer.scope, campaign_id)
    except NotFound:
        return await call_page(
            request,
            viewer,
            session,
            status=404,
            problem=viewer.texts.gettext("No contact of this campaign may be called now."),
        )
    except (Invalid, Conflict) as err:
        return await call_page(
            request, viewer, session, status=err.status_code, problem=_problem(err)
        )
    return RedirectResponse(
        viewer.link("/campaign-call", campaign=campaign_id, contact=reserved.contact.id),
        status_code=303,
    )


@router.post("/campaign-call/preview/{campaign_id}/{contact_id}/dial")
async def preview_dial(
    request: Request,
    viewer: AgentViewer,
    session: DbSession,
    campaign_id: CampaignId,
    contact_id: ContactId,
) -> Response:
    dialer = getattr(request.app.state.runtime, "dialer", None)
    try:
        # Only the agent holding the reservation dials, as through the API: the dialer alone
        # would also take a contact nobody reserved.
        await calls.ensure_reserved(session, viewer.scope, campaign_id, contact_id, lock=False)
        if dialer is None:
            raise Unavailable(viewer.texts.gettext("The dialer is not running."))
        # The dialer writes the attempt in a transaction of its own before Asterisk is asked.
        await dialer.dial_preview(
            viewer.scope.tenant_id, campaign_id, contact_id, viewer.principal.user_id
        )
    except (Invalid, Conflict, NotFound, Unavailable) as err:
        return await call_page(
            request,
            viewer,
            session,
            campaign_id=campaign_id,
            contact_id=contact_id,
            status=err.status_code,
            problem=_problem(err),
        )
    return RedirectResponse(viewer.link("/campaign-call", done="dial"), status_code=303)


@router.post("/campaign-call/preview/{campaign_id}/{contact_id}/skip")
async def preview_skip(
    request: Request,
    viewer: AgentViewer,
    session: DbSession,
    campaign_id: CampaignId,
    contact_id: ContactId,
) -> Response:
    try:
        async with session.begin_nested():
            await calls.skip_contact(session, viewer.scope, campaign_id, contact_id)
    except (Invalid, Conflict) as err:
        return await call_page(
            request, viewer, session, status=err.status_code, problem=_problem(err)
        )
    return RedirectResponse(viewer.link("/campaign-call", done="skip"), status_code=303)
