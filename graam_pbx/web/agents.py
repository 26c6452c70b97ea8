"""The Agents page: who is connected, paused (why, since when), on a call; force a logout, change
a pause. The same services as ``/api/v1/agents`` (live view, forced logout, pause), under the
same role rule (admins and supervisors; operators acting in a tenant)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.agents import pause_reasons, sessions, states
from graam_pbx.agents.schemas import SessionPause
from graam_pbx.deps import DbSession
from graam_pbx.errors import GraamError, Invalid, NotFound
from graam_pbx.rest import every_page
from graam_pbx.web.forms import form_id
from graam_pbx.web.i18n import _
from graam_pbx.web.render import page
from graam_pbx.web.viewer import Supervising, Viewer, console_router

router = console_router()

PAGE_SIZE = 500  # rows asked of a paged service at a time


# The timeline's states as people read them (English; translated when rendered).
STATE_LABELS = {
    "available": _("Available"),
    "ringing": _("Ringing"),
    "on-call": _("On a call"),
    "wrap-up": _("Wrap-up"),
    "paused": _("Paused"),
    "unregistered": _("Phone unreachable"),
    "logged-out": _("Logged out"),
}

# What a redirect after a change says (``?done=``): only these, never text from the URL.
DONE = {
    "forced-out": _("The agent was logged out: its licence is free."),
    "paused": _("The agent is paused."),
    "resumed": _("The agent is back: calls can reach it again."),
}


async def pause_catalogue(session: AsyncSession, viewer: Viewer) -> dict[str, str]:
    """The tenant's pause reasons, code → label, in the catalogue's order."""
    rows = await every_page(
        lambda after: pause_reasons.list_pause_reasons(
            session, viewer.scope, after_id=after, limit=PAGE_SIZE
        )
    )
    return {row.code: row.label for row in rows}


def reason_text(viewer: Viewer, code: str | None, catalogue: dict[str, str]) -> str:
    """A pause reason as shown: its code and label (a free reason as it is; none: a dash)."""
    if not code:
        return viewer.texts.gettext("no reason")
    label = catalogue.get(code)
    return f"{code} · {label}" if label else code


@dataclass(frozen=True)
class AgentLine:
    """One connected agent as the page shows it."""

    user_id: int
    name: str
    extension: str
    sip_username: str
    since: datetime
    paused: bool
    pause_reason: str | None
    paused_since: datetime | None
    on_call: bool  # Asterisk's device state is one of a call's
    state: states.AgentNow | None


async def connected_agents(
    request: Request, session: AsyncSession, viewer: Viewer
) -> list[AgentLine]:
    """Every live session of the tenant, with Asterisk's device state and the timeline's state."""
    rows = await every_page(
        lambda after: sessions.list_live_sessions(
            session, viewer.scope, after_id=after, limit=PAGE_SIZE
        )
    )
    worker: sessions.DeviceStates | None = getattr(request.app.state.runtime, "agents", None)
    devices = await sessions.live_device_states(worker, rows)
    current = {
        now.agent_id: now
        for now in await states.agents_now(
            session, viewer.scope.tenant_id, [r.session.user_id for r in rows]
        )
    }
    return [
        AgentLine(
            user_id=r.session.user_id,
            name=r.display_name,
            extension=r.extension,
            sip_username=r.sip_username,
            since=r.session.started_at,
            paused=r.session.paused,
            pause_reason=r.session.pause_reason,
            paused_since=r.session.paused_since,
            on_call=devices.get(r.sip_username) in sessions.ON_CALL_STATES,
            state=current.get(r.session.user_id),
        )
        for r in rows
    ]


async def _agents_page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    *,
    status: int = 200,
    done: str | None = None,
    error: str | None = None,
    error_agent: int | None = None,
) -> Response:
    catalogue = await pause_catalogue(session, viewer)
    return page(
        request,
        viewer,
        "agents.html",
        status=status,
        title=viewer.texts.gettext("Agents"),
        agents=await connected_agents(request, session, viewer),
        catalogue=catalogue,
        reason_text=lambda code: reason_text(viewer, code, catalogue),
        state_labels=STATE_LABELS,
        done=DONE.get(done or ""),
        error=error,
        error_agent=error_agent,
    )


@router.get("/agents")
async def agents_page(
    request: Request, viewer: Supervising, session: DbSession, done: str | None = None
) -> Response:
    return await _agents_page(request, session, viewer, done=done)


def asked_pause(paused: bool, reason: str) -> SessionPause:
    """A pause asked for on a page, checked as the API checks it (a bad reason: 422 on it)."""
    try:
        return SessionPause(paused=paused, reason=reason or None)
    except ValidationError as err:
        raise Invalid("body.reason", "letters, digits, ' ', '_', '.', '-'; up to 64") from err


def _agent_id(raw: str) -> int:
    agent = form_id(raw)
    if agent is None:
        raise NotFound("no such agent")
    return agent


def _refusal(viewer: Viewer, error: GraamError, reason: str = "") -> str:
    """What a refused change says on the page (``reason``: the pause reason asked for)."""
    gettext = viewer.texts.gettext
    if isinstance(error, Invalid) and error.details.get("errors"):
        field = error.details["errors"][0]
        if str(field.get("field", "")).endswith("reason"):
            # The code asked for, not the service's English explanation of the refusal.
            return gettext("This pause reason is not in the catalogue: {reason}", reason=reason)
    if isinstance(error, NotFound):
        return gettext("This agent is not logged in any more.")
    return gettext("The change was refused: {message}", message=error.message)


@router.post("/agents/{user_id}/logout")
async def force_logout(
    request: Request, user_id: str, viewer: Supervising, session: DbSession
) -> Response:
    agent = _agent_id(user_id)
    try:
        async with session.begin_nested():  # a refusal leaves nothing half-written
            await sessions.logout(session, viewer.scope, agent, source="web")
    except GraamError as error:
        return await _agents_page(
            request,
            session,
            viewer,
            status=error.status_code,
            error=_refusal(viewer, error),
            error_agent=agent,
        )
    return RedirectResponse(viewer.link("/agents", done="forced-out"), status_code=303)


@router.post("/agents/{user_id}/pause")
async def change_pause(
    request: Request,
    user_id: str,
    viewer: Supervising,
    session: DbSession,
    change: Annotated[str, Form(max_length=80)],
) -> Response:
    """``change``: ``resume``, ``pause`` (no reason) or ``pause:<code>``."""
    agent = _agent_id(user_id)
    action, reason = change.split(":", 1) if ":" in change else (change, "")
    try:
        if action not in ("pause", "resume"):
            raise Invalid("body.change", "must be resume, pause or pause:<code>")
        asked = asked_pause(action == "pause", reason)
        async with session.begin_nested():
            await sessions.set_paused(
                session, viewer.scope, agent, asked.paused, asked.reason, source="web"
            )
    except GraamError as error:
        return await _agents_page(
            request,
            session,
            viewer,
            status=error.status_code,
            error=_refusal(viewer, error, reason),
            error_agent=agent,
        )
    done = "paused" if asked.paused else "resumed"
    return RedirectResponse(viewer.link("/agents", done=done), status_code=303)
