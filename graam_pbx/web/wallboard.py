"""The Wallboard: per queue the callers waiting, the longest wait and its colour level, today's
figures and the agents needed; the agents by state with their time in state and pause reason,
and for an agent on a call the buttons that call the viewer's phone to listen, whisper or
barge (live supervision).

Both the page's first render and its stream (``/live/wallboard``, Server-Sent Events) come
from the control plane's live boards (``graam_pbx.live``): built from its own state when the
tenant's first viewer arrives, serialised once per change for every viewer of the tenant;
nothing here asks Asterisk but a supervision (``graam_pbx.supervision``, as its API does).
Admins and supervisors (operators acting in a tenant) only.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import Receive, Scope, Send

from graam_pbx.ami.supervisor import ami_routes
from graam_pbx.errors import Conflict, GraamError, Invalid, NotFound, Unavailable
from graam_pbx.live.wallboards import Wallboards
from graam_pbx.supervision import service as supervision_service
from graam_pbx.supervision.schemas import Mode, SupervisionStart
from graam_pbx.supervision.service import NoDevice, NotOnCall
from graam_pbx.web.agents import STATE_LABELS, reason_text
from graam_pbx.web.forms import form_id
from graam_pbx.web.i18n import _
from graam_pbx.web.phone import is_browser_phone, registered
from graam_pbx.web.render import page
from graam_pbx.web.viewer import LiveSupervising, Viewer, console_router

router = console_router()

RETRY_MS = 1000  # how soon a browser reconnects after the stream broke


LEVEL_LABELS = {"ok": _("OK"), "warn": _("Warning"), "alarm": _("Alarm")}
ALERT_TEXTS = {
    "waiting": _("{queue}: {count} waiting ({level})"),
    "longest_wait": _("{queue}: a caller has waited {wait} ({level})"),
}
STATUS_TEXTS = {
    "static": _("As of {time}"),
    "connecting": _("Connecting…"),
    "live": _("Live"),
    "reconnecting": _("Reconnecting…"),
}
OTHER_TEXTS = (_("no reason"), _("No queue yet."), _("No agent has logged in yet."))
CAMPAIGN_MODES = {
    "preview": _("Preview"),
    "progressive": _("Progressive"),
    "predictive": _("Predictive"),
}
# Live supervision of an agent on a call (graam_pbx/supervision): its buttons, and what the
# page says after one (``?done=`` or ``?refused=``: only these, never text from the URL).
SUPERVISE_LABELS = {
    Mode.LISTEN.value: _("Listen"),
    Mode.WHISPER.value: _("Whisper"),
    Mode.BARGE.value: _("Barge"),
}
SUPERVISE_DONE = {
    Mode.LISTEN.value: _("Your phone rings: answer it to listen to the call, unheard."),
    Mode.WHISPER.value: _("Your phone rings: answer it to speak to the agent alone."),
    Mode.BARGE.value: _("Your phone rings: answer it to join the call."),
}
# The viewer's phone is a browser phone: it rings on the Phone page, open in another tab.
BROWSER_PHONE = "browser"
SUPERVISE_DONE_BROWSER = {
    Mode.LISTEN.value: _(
        "Your browser phone rings: answer it on the Phone page to listen to the call, unheard."
    ),
    Mode.WHISPER.value: _(
        "Your browser phone rings: answer it on the Phone page to speak to the agent alone."
    ),
    Mode.BARGE.value: _("Your browser phone rings: answer it on the Phone page to join the call."),
}


class BrowserPhoneOff(Conflict):
    """The viewer's phone is a browser phone and no Phone page has it registered: a call to
    it would ring nowhere."""

    error_id = "browser-phone-off"


SUPERVISE_REFUSED = {
    NotOnCall.error_id: _("This agent is not on a call any more."),
    NoDevice.error_id: _("You have no phone to be called on: an admin gives you a device."),
    BrowserPhoneOff.error_id: _(
        "Your browser phone is off: open the Phone page in another tab, then press again."
    ),
    NotFound.error_id: _("This agent is not one of this tenant's."),
    Unavailable.error_id: _("Your phone could not be called now; try again."),
}


def _live(request: Request) -> Wallboards:
    live: Wallboards | None = getattr(request.app.state.runtime, "live", None)
    if live is None:
        raise Unavailable("the wallboards are not running")
    return live


def script_texts(viewer: Viewer) -> dict[str, Any]:
    """What the page's script writes, in the viewer's language."""
    gettext = viewer.texts.gettext
    return {
        "locale": viewer.texts.locale,
        "states": {key: gettext(text) for key, text in STATE_LABELS.items()},
        "levels": {key: gettext(text) for key, text in LEVEL_LABELS.items()},
        "alerts": {key: gettext(text) for key, text in ALERT_TEXTS.items()},
        "status": {key: gettext(text) for key, text in STATUS_TEXTS.items()},
        "no_reason": gettext("no reason"),
        "no_queue": gettext("No queue yet."),
        "no_agent": gettext("No agent has logged in yet."),
        "modes": {key: gettext(text) for key, text in CAMPAIGN_MODES.items()},
    }


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _ratio(text: str | None) -> Decimal | None:
    return Decimal(text) if text is not None else None


@router.get("/wallboard")
async def wallboard_page(
    request: Request,
    viewer: LiveSupervising,
    done: str | None = None,
    refused: str | None = None,
    phone: str | None = None,
) -> HTMLResponse:
    board = await _live(request).board(viewer.scope.tenant_id)
    now = datetime.now(UTC)
    texts = viewer.texts
    queues = [
        {
            **queue,
            "level_text": texts.gettext(LEVEL_LABELS[queue["level"]]),
            "longest_wait": texts.duration(queue["longest_wait_s"]) if queue["waiting"] else "—",
            "service_level": texts.percent(_ratio(queue["today"]["service_level"])),
            "abandon_rate": texts.percent(_ratio(queue["today"]["abandon_rate"])),
            "asa": texts.duration(_ratio(queue["today"]["asa_s"])),
        }
        for queue in board["queues"]
    ]
    by_id = {queue["id"]: queue for queue in queues}
    alerts = []
    for alert in board["alerts"]:
        queue = by_id[alert["queue_id"]]
        alerts.append(
            texts.gettext(
                ALERT_TEXTS[alert["kind"]],
                queue=queue["name"],
                count=queue["waiting"],
                wait=queue["longest_wait"],
                level=texts.gettext(LEVEL_LABELS[alert["level"]]),
            )
        )
    agents = []
    for agent in board["agents"]:
        since = _moment(agent["since"])
        agents.append(
            {
                **agent,
                "state_text": texts.gettext(STATE_LABELS.get(agent["state"], agent["state"])),
                "in_state": texts.duration(now - since if since else None),
                "reason_text": _reason(viewer, agent),
            }
        )
    campaigns = [
        {
            **campaign,
            "mode_text": texts.gettext(CAMPAIGN_MODES.get(campaign["mode"], campaign["mode"])),
            "abandon_text": texts.percent(_ratio(campaign["abandon_rate_24h"])),
        }
        for campaign in board.get("campaigns", [])
    ]
    return page(
        request,
        viewer,
        "wallboard.html",
        title=texts.gettext("Wallboard"),
        board=board,
        queues=queues,
        agents=agents,
        alerts=alerts,
        campaigns=campaigns,
        status_text=texts.gettext(STATUS_TEXTS["static"], time=texts.time(now, "medium")),
        stream=viewer.link("/live/wallboard"),
        board_json=json.dumps(board, separators=(",", ":")),
        texts_json=json.dumps(script_texts(viewer), separators=(",", ":"), ensure_ascii=False),
        supervise_labels=SUPERVISE_LABELS,
        # The form of each agent on a call; the page's script fills in the agent.
        supervise_action=viewer.link("/wallboard/agents/0/supervise"),
        done=(SUPERVISE_DONE_BROWSER if phone == BROWSER_PHONE else SUPERVISE_DONE).get(done or ""),
        refused=SUPERVISE_REFUSED.get(refused or ""),
        # A refusal because the browser phone is off links to the Phone page.
        phone_link=viewer.link("/phone") if refused == BrowserPhoneOff.error_id else None,
    )


@router.post("/wallboard/agents/{user_id}/supervise")
async def supervise(
    request: Request,
    user_id: str,
    viewer: LiveSupervising,
    mode: Annotated[str, Form(max_length=16)],
) -> RedirectResponse:
    """Call the viewer's phone to listen to, whisper to or barge into the agent's call: what
    ``POST /api/v1/supervision`` does, audited the same way. A browser phone is called only
    while a Phone page has it registered (else nothing is audited nor called)."""
    agent = form_id(user_id)
    browser = False
    try:
        if agent is None:
            raise NotFound("no such agent")
        if mode not in SUPERVISE_LABELS:
            raise Invalid("body.mode", "must be listen, whisper or barge")
        asked = SupervisionStart(agent_user_id=agent, mode=Mode(mode))
        sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
        async with sessions() as session, session.begin():
            supervision = await supervision_service.prepare(
                session,
                viewer.scope,
                asked,
                ami_routes(request.app.state.runtime),
            )
            browser = await is_browser_phone(session, supervision.device_id)
            if browser and not await registered(supervision.ami, supervision.device):
                # Raised in the transaction: the audit entry goes with it.
                raise BrowserPhoneOff("the browser phone is not registered: no Phone page open")
        await supervision_service.call_supervisor(supervision)
    except GraamError as error:
        refused = error.error_id if error.error_id in SUPERVISE_REFUSED else Unavailable.error_id
        return RedirectResponse(viewer.link("/wallboard", refused=refused), status_code=303)
    shown = viewer.link("/wallboard", done=mode, phone=BROWSER_PHONE if browser else None)
    return RedirectResponse(shown, status_code=303)


def _reason(viewer: Viewer, agent: dict[str, Any]) -> str:
    if agent["state"] != "paused":
        return ""
    code, label = agent["pause_reason"], agent["pause_label"]
    return reason_text(viewer, code, {code: label} if code and label else {})


@router.get("/live/wallboard")
async def wallboard_stream(request: Request, viewer: LiveSupervising) -> StreamingResponse:
    """The tenant's board as Server-Sent Events: the whole board at once, then at each change
    (``event: board``, ``id:`` its sequence number); a comment when nothing happened for
    a while (``live.wallboards.HEARTBEAT``). The stream ends when the control plane stops."""
    live = _live(request)
    watcher = await live.watch(viewer.scope.tenant_id)

    async def events() -> AsyncIterator[bytes]:
        yield f"retry: {RETRY_MS}\n\n".encode()
        while (frame := await watcher.next()) is not None:
            yield frame

    return EventStream(events(), on_end=lambda: live.leave(watcher))


class EventStream(StreamingResponse):
    """A stream of Server-Sent Events that calls ``on_end`` however it ends: also when its
    body never started (the client left first) or was left suspended (cut while sending),
    where a ``finally`` in the body would wait for the garbage collector, or never run."""

    def __init__(self, content: AsyncIterator[bytes], on_end: Callable[[], None]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self._on_end = on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_end()
