"""The My day page of an agent: log in and out, pause with a reason of the tenant's catalogue,
resume, its current call's recording (start, pause, resume), and its own figures today. The
same services as ``/api/v1/agents/{id}/session``, ``/api/v1/my-call/recording`` and
``/api/v1/stats/agents`` (an agent acts on and reads only itself); logins are ``web`` ones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.agents import service as devices_service
from graam_pbx.agents import sessions, states
from graam_pbx.ami.supervisor import ami_routes
from graam_pbx.auth.principal import Role
from graam_pbx.call_control import recording as call_recording
from graam_pbx.call_control.schemas import RecordingState
from graam_pbx.deps import DbSession
from graam_pbx.errors import GraamError, Invalid
from graam_pbx.stats import service as stats_service
from graam_pbx.stats.kpi import STATES, AgentKpis, Interval
from graam_pbx.web.agents import (
    PAGE_SIZE,
    STATE_LABELS,
    asked_pause,
    pause_catalogue,
    reason_text,
)
from graam_pbx.web.forms import form_id
from graam_pbx.web.i18n import _
from graam_pbx.web.render import page
from graam_pbx.web.viewer import AgentViewer, Viewer, console_router

router = console_router()


# What a redirect after a change says (``?done=``): only these, never text from the URL.
DONE = {
    "logged-in": _("You are logged in: calls can reach you."),
    "logged-out": _("You are logged out: your licence is free."),
    "paused": _("You are paused: calls do not reach you."),
    "resumed": _("You are back: calls can reach you again."),
    "recording": _("Your call is being recorded."),
    "recording-paused": _("Your call's recording is paused: what is said now is not recorded."),
}
# Why a change of the call's recording was refused (``?refused=``).
RECORDING_REFUSED = {
    call_recording.NotOnCall.error_id: _("You are not on a call any more."),
    call_recording.NotRecordable.error_id: _(
        "Your company's recording policy does not record this call."
    ),
    "unavailable": _("Your call's recording cannot be changed now: try again."),
}
NOT_READ = "unavailable"  # the call could not be read from Asterisk


async def _my_call(
    request: Request, session: AsyncSession, viewer: Viewer
) -> RecordingState | str | None:
    """The recording of the agent's current call; None: no call; ``NOT_READ``: unknown now."""
    try:
        routes = ami_routes(request.app.state.runtime)
        return await call_recording.current(session, viewer.scope, routes)
    except call_recording.NotOnCall:
        return None
    except GraamError:
        return NOT_READ


async def _today(session: AsyncSession, viewer: Viewer) -> AgentKpis | None:
    """The agent's own figures since midnight in the tenant's zone (one day, one bucket)."""
    span = await stats_service.period(session, viewer.scope, None, None, Interval.DAY)
    _rows, totals = await stats_service.agent_stats(
        session, viewer.scope, span, viewer.principal.user_id, datetime.now(UTC)
    )
    return totals[0].kpis if totals else None


async def _my_day_page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    *,
    status: int = 200,
    done: str | None = None,
    errors: dict[str, str] | None = None,
    refused: dict[str, Any] | None = None,
    recording_refused: str | None = None,
) -> Response:
    title = viewer.texts.gettext("My day")
    if viewer.role is not Role.AGENT:
        # An operator is let into every page, but has no day of an agent to show.
        return page(request, viewer, "my_day.html", status=status, title=title, agent=False)
    user_id = viewer.principal.user_id
    live = await sessions.get_live_session(session, viewer.scope, user_id)
    devices, _after = await devices_service.list_devices(
        session, viewer.scope, user_id=user_id, after_id=None, limit=PAGE_SIZE
    )
    mine = await states.agents_now(session, viewer.scope.tenant_id, [user_id])
    state_now = mine[0] if mine else None
    catalogue = await pause_catalogue(session, viewer)
    kpis = await _today(session, viewer)
    call = await _my_call(request, session, viewer) if devices else None
    return page(
        request,
        viewer,
        "my_day.html",
        status=status,
        title=title,
        agent=True,
        live=live,
        device=next((d for d in devices if live and d.id == live.device_id), None),
        devices=devices,
        state_now=state_now,
        catalogue=catalogue,
        reason_text=lambda code: reason_text(viewer, code, catalogue),
        state_labels=STATE_LABELS,
        states=STATES,
        kpis=kpis,
        done=DONE.get(done or ""),
        errors=errors or {},
        refused=refused,
        call=call if isinstance(call, RecordingState) else None,
        call_unknown=call == NOT_READ,
        recording_refused=RECORDING_REFUSED.get(recording_refused or ""),
    )


@router.get("/my-day")
async def my_day_page(
    request: Request,
    viewer: AgentViewer,
    session: DbSession,
    done: str | None = None,
    refused: str | None = None,
) -> Response:
    return await _my_day_page(request, session, viewer, done=done, recording_refused=refused)


@router.post("/my-day/recording")
async def my_call_recording(
    request: Request,
    viewer: AgentViewer,
    session: DbSession,
    recording: Annotated[str, Form(max_length=8)],
) -> Response:
    """Start or resume (``recording=on``) or pause (``off``) the recording of the agent's
    current call, as ``PUT /api/v1/my-call/recording`` does, audited the same way."""
    if recording not in ("on", "off"):
        refusal = viewer.texts.gettext("The change was refused: {message}", message=recording)
        return await _my_day_page(request, session, viewer, status=422, errors={"form": refusal})
    try:
        routes = ami_routes(request.app.state.runtime)
        await call_recording.change(session, viewer.scope, routes, recording=recording == "on")
    except GraamError as error:
        refused = error.error_id if error.error_id in RECORDING_REFUSED else NOT_READ
        return RedirectResponse(viewer.link("/my-day", refused=refused), status_code=303)
    done = "recording" if recording == "on" else "recording-paused"
    return RedirectResponse(viewer.link("/my-day", done=done), status_code=303)


def _device_id(raw: str) -> int | None:
    if not raw:
        return None
    device = form_id(raw)
    if device is None:
        raise Invalid("body.device_id", "must be one of your devices")
    return device


def _field_errors(viewer: Viewer, error: GraamError) -> dict[str, str]:
    """A refusal as the form shows it: the field it concerns → what to do."""
    gettext = viewer.texts.gettext
    field = ""
    if isinstance(error, Invalid) and error.details.get("errors"):
        field = str(error.details["errors"][0].get("field", ""))
    if field.endswith("reason"):
        return {"reason": gettext("Choose a reason from the list.")}
    if field.endswith("device_id"):
        return {"device": gettext("Choose one of your devices.")}
    if error.status_code == 404:
        return {"form": gettext("You are not logged in.")}
    if error.status_code == 409:
        return {"form": gettext("You are logged in on another device: log out first.")}
    return {"form": gettext("The change was refused: {message}", message=error.message)}


@router.post("/my-day")
async def my_day_action(
    request: Request,
    viewer: AgentViewer,
    session: DbSession,
    action: Annotated[str, Form(max_length=16)],
    device_id: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    """``action``: ``login`` (with ``device_id``), ``logout``, ``pause`` (with ``reason``),
    ``resume``."""
    user_id = viewer.principal.user_id
    refused: dict[str, Any] | None = None
    try:
        # A refusal rolls back what it began (nothing half-written), but a login refused for
        # licences keeps its refusal's event, as the API's does.
        async with session.begin_nested():
            if action == "login":
                try:
                    await sessions.login(
                        session,
                        viewer.scope,
                        user_id,
                        device_id=_device_id(device_id),
                        source="web",
                    )
                except sessions.LicenceExhausted as err:
                    refused = err.details
            elif action == "logout":
                await sessions.logout(session, viewer.scope, user_id, source="web")
            elif action in ("pause", "resume"):
                asked = asked_pause(action == "pause", reason)
                await sessions.set_paused(
                    session, viewer.scope, user_id, asked.paused, asked.reason, source="web"
                )
            else:
                raise Invalid("body.action", "must be login, logout, pause or resume")
    except GraamError as error:
        return await _my_day_page(
            request,
            session,
            viewer,
            status=error.status_code,
            errors=_field_errors(viewer, error),
        )
    if refused is not None:
        return await _my_day_page(request, session, viewer, status=409, refused=refused)
    done = {"login": "logged-in", "logout": "logged-out", "pause": "paused", "resume": "resumed"}
    return RedirectResponse(viewer.link("/my-day", done=done[action]), status_code=303)
