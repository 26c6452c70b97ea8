"""The Forwarding page: where the calls made to a user go when they are away (do not disturb,
every call, busy, no answer, unreachable).

Every user of a tenant sets their own rules, whatever their role, on ``/forwarding``; an admin
sets any user's of the tenant on ``/forwarding/<user id>``. Reads and changes are
``forwarding.rules.get_rules`` and ``set_rules``, the functions behind
``GET/PUT /api/v1/users/{id}/forwarding``: the same rule of who sets whose (another user's
page is a 403 unless the viewer is an admin), the same checks of each target (a 422 naming
the rule, shown beside it), the same version (412) and audit entry; the form's input is
checked by the API's own schema (``ForwardingRules``).

The destinations offered are the tenant's extensions (with their owner's name), voicemail
boxes and external numbers, whatever the viewer's role: the extensions are read here, not
through ``agents.service.list_devices``, which shows an agent only its own devices with their
SIP settings; this reads no more of a device than its extension and its owner's name, which
a phone's ``*72<extension>`` already lets any user forward to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from graam_pbx.agents.models import AgentDevice
from graam_pbx.auth import service as auth_service
from graam_pbx.auth.models import User
from graam_pbx.auth.principal import Role
from graam_pbx.deps import DbSession
from graam_pbx.destinations.schemas import Destination
from graam_pbx.errors import Forbidden, Invalid, NotFound, PreconditionFailed
from graam_pbx.fields import MAX_ID
from graam_pbx.forwarding import rules as forwarding_rules
from graam_pbx.forwarding import service as numbers_service
from graam_pbx.forwarding.models import NO_ANSWER_SECONDS
from graam_pbx.forwarding.schemas import ForwardingRules, ForwardingRulesOut
from graam_pbx.rest import every_page
from graam_pbx.voicemail import service as voicemail_service
from graam_pbx.web.forms import form_id
from graam_pbx.web.i18n import _
from graam_pbx.web.render import form_errors, page
from graam_pbx.web.viewer import MemberViewer, Viewer, console_router

router = console_router()

PAGE_ROWS = 500  # rows asked of a paged service at a time
UserId = Annotated[int, Path(ge=1, le=MAX_ID)]
# Generous bounds for the raw form: the schema then says precisely what is wrong.
TargetForm = Annotated[str, Form(max_length=60)]
SecondsForm = Annotated[str, Form(max_length=20)]

# The rules that send calls somewhere, in the order the page shows them: the field, its
# label and what it does (English; translated when rendered).
RULES = (
    ("unconditional", _("Every call"), _("Forwarded at once: the phones never ring.")),
    ("busy", _("When busy"), _("When the phone answers busy.")),
    (
        "no_answer",
        _("When not answered"),
        _("When no phone answered within the seconds set below."),
    ),
    ("unreachable", _("When unreachable"), _("When none of the phones is registered.")),
)
# Each field's name as a refusal names it (the service says ``body.<field>``).
FIELD_LABELS = {
    "do_not_disturb": _("Do not disturb"),
    "do_not_disturb_to": _("During do not disturb, calls go to"),
    **{field: label for field, label, _help in RULES},
    "no_answer_seconds": _("Seconds before no answer"),
}
# A destination the lists do not hold (a person set through the API, a target deleted since
# the page was opened), by its type and id.
UNLISTED_LABELS = {
    "agent": _("User {id}"),
    "extension": _("Extension {id}"),
    "voicemail": _("Voicemail box {id}"),
    "external": _("External number {id}"),
}
TARGET_FIELDS = ("do_not_disturb_to", *(field for field, _label, _help in RULES))


@dataclass(frozen=True)
class Choice:
    """One destination a rule's select offers: ``type:id`` and how it reads."""

    value: str
    label: str


def target_value(target: Destination | None) -> str:
    """A destination as a select's value (``voicemail:3``); none (off): empty."""
    return "" if target is None else f"{target.type.value}:{target.id}"


def _target_raw(raw: str) -> object:
    """A select's value as the schema reads a destination: empty is none, ``type:id`` a
    destination (the schema and the service check it), anything else as it came (refused)."""
    raw = raw.strip()
    if not raw:
        return None
    kind, _sep, number = raw.partition(":")
    object_id = form_id(number)
    return {"type": kind, "id": object_id} if object_id is not None else raw


@dataclass
class Typed:
    """The form's values as typed (shown again when refused)."""

    do_not_disturb: bool = False
    do_not_disturb_to: str = ""
    unconditional: str = ""
    busy: str = ""
    no_answer: str = ""
    no_answer_seconds: str = "20"
    unreachable: str = ""

    @classmethod
    def of(cls, rules: ForwardingRulesOut) -> Typed:
        return cls(
            do_not_disturb=rules.do_not_disturb,
            no_answer_seconds=str(rules.no_answer_seconds),
            **{field: target_value(getattr(rules, field)) for field in TARGET_FIELDS},
        )

    def raw(self) -> dict[str, object]:
        seconds = self.no_answer_seconds.strip()
        whole = seconds.isdecimal() and len(seconds) <= 6
        return {
            "do_not_disturb": self.do_not_disturb,
            # A whole number as the API takes it; anything else as typed (strict: refused).
            "no_answer_seconds": int(seconds) if whole else seconds,
            **{field: _target_raw(getattr(self, field)) for field in TARGET_FIELDS},
        }


def field_rules(viewer: Viewer) -> dict[str, str]:
    """What each field accepts, said next to it when the schema refuses it."""
    gettext = viewer.texts.gettext
    listed = gettext("Choose off or one of the listed destinations.")
    return {
        "do_not_disturb": gettext("Tick the box, or leave it empty."),
        "do_not_disturb_to": gettext("Choose one of the voicemail boxes, or nobody."),
        **{field: listed for field, _label, _help in RULES},
        "no_answer_seconds": gettext(
            "A whole number of seconds, from {low} to {high}.",
            low=NO_ANSWER_SECONDS[0],
            high=NO_ANSWER_SECONDS[1],
        ),
    }


def to_rules(viewer: Viewer, typed: Typed) -> tuple[ForwardingRules | None, dict[str, str]]:
    """The rules typed, checked by the API's schema; else each refused field's rule."""
    try:
        return ForwardingRules.model_validate(typed.raw()), {}
    except ValidationError as err:
        refusals = form_errors(err, field_rules(viewer))
        return None, refusals or {"form": viewer.texts.gettext("The request is not valid.")}


def refused(viewer: Viewer, err: Invalid) -> dict[str, str]:
    """The service's refusal beside the field it names (``body.busy``: the busy rule), with
    the service's reason."""
    errors = err.details.get("errors") or [{}]
    field = str(errors[0].get("field", "")).rsplit(".", 1)[-1]
    reason = str(errors[0].get("reason", err.message))
    text = viewer.texts.gettext("Refused: {reason}.", reason=reason)
    return {field if field in FIELD_LABELS else "form": text}


# ---- what the selects offer -----------------------------------------------------------------


async def _extensions(session: DbSession, viewer: Viewer) -> list[Choice]:
    """The tenant's extensions, each with its owner's name (see the module's docstring)."""
    rows = await session.execute(
        select(AgentDevice.id, AgentDevice.extension, User.display_name)
        .join(User, User.id == AgentDevice.user_id)
        .where(AgentDevice.tenant_id == viewer.scope.tenant_id)
        .order_by(AgentDevice.extension, AgentDevice.id)
    )
    return [Choice(f"extension:{row.id}", f"{row.extension} · {row.display_name}") for row in rows]


async def choices(session: DbSession, viewer: Viewer) -> dict[str, list[Choice]]:
    """The destinations a rule may name: extensions, voicemail boxes, external numbers."""
    scope = viewer.scope
    boxes = await every_page(
        lambda after: voicemail_service.list_boxes(session, scope, after_id=after, limit=PAGE_ROWS)
    )
    numbers = await every_page(
        lambda after: numbers_service.list_numbers(session, scope, after_id=after, limit=PAGE_ROWS)
    )
    return {
        "extension": await _extensions(session, viewer),
        "voicemail": [
            Choice(f"voicemail:{box.id}", f"{box.number} · {box.name}")
            for box in sorted(boxes, key=lambda box: (box.number, box.id))
        ],
        "external": [
            Choice(f"external:{number.id}", f"{number.name} · {number.number}")
            for number in sorted(numbers, key=lambda number: (number.name, number.id))
        ],
    }


def _label_of(viewer: Viewer, value: str, offered: dict[str, list[Choice]]) -> str:
    """How a destination reads: its choice's label, else (a person set through the API, a
    target gone meanwhile) its type and id."""
    for group in offered.values():
        for choice in group:
            if choice.value == value:
                return choice.label
    kind, _sep, number = value.partition(":")
    named = UNLISTED_LABELS.get(kind)
    return viewer.texts.gettext(named, id=number) if named else value


def _unoffered(viewer: Viewer, typed: Typed, offered: dict[str, list[Choice]]) -> dict[str, Choice]:
    """Each field's value the selects do not offer, kept as an option of its own: saving the
    page unchanged never drops a rule set elsewhere, and a refused value stays shown."""
    values = {choice.value for group in offered.values() for choice in group}
    kept = {}
    for field in TARGET_FIELDS:
        value = getattr(typed, field)
        if value and value not in values:
            kept[field] = Choice(value, _label_of(viewer, value, offered))
    return kept


# ---- the page -----------------------------------------------------------------------------


async def _whose(session: DbSession, viewer: Viewer, user_id: int) -> str:
    user = await auth_service.get_user(session, viewer.scope, user_id)
    return user.display_name


async def _people(session: DbSession, viewer: Viewer) -> list[User]:
    """The tenant's users whose rules the viewer may open (admins: everyone's)."""
    if viewer.role is not Role.ADMIN:
        return []
    return await every_page(
        lambda after: auth_service.list_users(
            session, viewer.scope, role=None, after_id=after, limit=PAGE_ROWS
        )
    )


async def forwarding_page(
    request: Request,
    viewer: Viewer,
    session: DbSession,
    user_id: int,
    *,
    status: int = 200,
    typed: Typed | None = None,
    errors: dict[str, str] | None = None,
    done: bool = False,
    problem: str | None = None,
) -> Response:
    # The service's rule first: another user's rules are an admin's only (403), a user of
    # no tenant's is none (404).
    rules = await forwarding_rules.get_rules(session, viewer.scope, user_id)
    own = user_id == viewer.principal.user_id
    name = await _whose(session, viewer, user_id)
    offered = await choices(session, viewer)
    typed = typed or Typed.of(rules)
    saved = {field: target_value(getattr(rules, field)) for field in TARGET_FIELDS}
    gettext = viewer.texts.gettext
    return page(
        request,
        viewer,
        "forwarding.html",
        status=status,
        title=gettext("Forwarding") if own else gettext("Forwarding of {name}", name=name),
        own=own,
        user_id=user_id,
        name=name,
        rules=rules,
        in_force={field: _label_of(viewer, v, offered) for field, v in saved.items() if v},
        typed=typed,
        errors=errors or {},
        offered=offered,
        kept=_unoffered(viewer, typed, offered),
        rule_fields=RULES,
        field_labels=FIELD_LABELS,
        seconds_range=NO_ANSWER_SECONDS,
        people=await _people(session, viewer),
        done=done,
        problem=problem,
        action=viewer.link(f"/forwarding/{user_id}"),
    )


def _own_id(viewer: Viewer) -> int:
    if viewer.principal.is_operator:
        raise Forbidden("an operator has no forwarding rules in a tenant")
    return viewer.principal.user_id


@router.get("/forwarding")
async def own_forwarding(
    request: Request,
    viewer: MemberViewer,
    session: DbSession,
    user: Annotated[str | None, Query(max_length=20)] = None,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """The viewer's own rules; ``?user=<id>`` (an admin's choice of whose): that user's."""
    if user:
        chosen = form_id(user)
        if chosen is None:
            raise NotFound("no such user")
        if chosen != viewer.principal.user_id:
            return RedirectResponse(viewer.link(f"/forwarding/{chosen}"), status_code=303)
    own = _own_id(viewer)
    return await forwarding_page(request, viewer, session, own, done=done == "saved")


@router.get("/forwarding/{user_id}")
async def user_forwarding(
    request: Request,
    viewer: MemberViewer,
    session: DbSession,
    user_id: UserId,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    return await forwarding_page(request, viewer, session, user_id, done=done == "saved")


@router.post("/forwarding/{user_id}")
async def save_forwarding(
    request: Request,
    viewer: MemberViewer,
    session: DbSession,
    user_id: UserId,
    do_not_disturb: TargetForm = "",
    do_not_disturb_to: TargetForm = "",
    unconditional: TargetForm = "",
    busy: TargetForm = "",
    no_answer: TargetForm = "",
    no_answer_seconds: SecondsForm = "",
    unreachable: TargetForm = "",
    version: Annotated[int | None, Form(ge=0, le=MAX_ID)] = None,
) -> Response:
    typed = Typed(
        do_not_disturb=do_not_disturb == "on",
        do_not_disturb_to=do_not_disturb_to,
        unconditional=unconditional,
        busy=busy,
        no_answer=no_answer,
        no_answer_seconds=no_answer_seconds,
        unreachable=unreachable,
    )
    data, errors = to_rules(viewer, typed)
    if data is None:
        return await forwarding_page(
            request, viewer, session, user_id, status=422, typed=typed, errors=errors
        )
    try:
        # A savepoint: a refused change leaves the request's transaction as it was.
        async with session.begin_nested():
            await forwarding_rules.set_rules(session, viewer.scope, user_id, data, version)
    except Invalid as err:
        return await forwarding_page(
            request, viewer, session, user_id, status=422, typed=typed, errors=refused(viewer, err)
        )
    except PreconditionFailed:
        problem = viewer.texts.gettext(
            "These rules changed since you opened the page: check your choices, then save."
        )
        return await forwarding_page(
            request, viewer, session, user_id, status=412, typed=typed, problem=problem
        )
    own = user_id == viewer.principal.user_id
    back = "/forwarding" if own else f"/forwarding/{user_id}"
    return RedirectResponse(viewer.link(back, done="saved"), status_code=303)
