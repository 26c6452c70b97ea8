"""The console's phone: the browser device (a device of transport ``webrtc``) of the user
who is logged in (an agent, a supervisor or an admin), registered from this page while it is
open, to take and make calls in the browser.

The page registers over Asterisk's SIP WebSocket (``Endpoints.phone_websocket``) with the
device's credentials, which it asks of ``/phone/credentials``: the device's digest hash
(HA1, what Asterisk checks; the password itself is never kept), given only to the user who
owns the device, whatever their role, on their own console session, never cached. The hash
answers digests for this device only, as the password would: the owner holds the device
either way. An operator acting in a tenant owns no device there: the page says so.

Calls, logins and licences are those of any device: an agent logs in to the queues with it
on My day (or its supervisor, or the API), and a phone that unregisters (the page closed)
ends the session as any phone's does (the agent worker). A supervisor's or an admin's page
also takes the supervision calls the wallboard and the API place (graam_pbx/supervision):
their caller ID names the mode and the agent's extension, and the page says so.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.agents import service as devices_service
from graam_pbx.agents.models import AgentDevice
from graam_pbx.agents.schemas import Transport
from graam_pbx.ami import AmiError, AmiSupervisor
from graam_pbx.auth.principal import Role
from graam_pbx.cluster import placement
from graam_pbx.deps import DbSession
from graam_pbx.errors import NotFound
from graam_pbx.supervision.schemas import Mode
from graam_pbx.web.agents import PAGE_SIZE
from graam_pbx.web.i18n import _
from graam_pbx.web.render import SECURITY_HEADERS, page
from graam_pbx.web.reports import all_queues
from graam_pbx.web.viewer import MemberViewer, Viewer, console_router

router = console_router()

# Seconds between two checks by the page that its console session still holds: once it does
# not (logged out, expired, the device taken away), the phone unregisters and stops.
SESSION_CHECK_SECONDS = 30
AMI_TIMEOUT = 5.0

# The page's texts for its script (English; translated when rendered).
SCRIPT_TEXTS = {
    "connecting": _("Connecting…"),
    "registered": _("Ready: calls can reach this phone"),
    "unregistered": _("Not registered: calls do not reach this phone"),
    "disconnected": _("Connection lost: reconnecting…"),
    "failed": _("The phone could not start: {reason}"),
    "incoming": _("Incoming call from {caller}"),
    "calling": _("Calling {target}…"),
    "on_call": _("On a call with {caller}"),
    "on_hold": _("On hold: {caller}"),
    "ended": _("Call ended"),
    "signed_out": _("Your console session has ended: this phone is off. Log in again."),
    "unknown": _("unknown"),
    "in": _("In"),
    "out": _("Out"),
}
# Who may supervise (graam_pbx/supervision): their page shows a supervision call as one.
SUPERVISING_ROLES = (Role.ADMIN, Role.SUPERVISOR)
# A supervision call, as the page shows it: ringing, answered, and in the page's call log
# ({agent}: the agent's extension, from the call's caller ID).
SUPERVISION_TEXTS = {
    Mode.LISTEN.value: {
        "incoming": _("Supervision call: listen to agent {agent}"),
        "on_call": _("Listening to agent {agent}: nobody hears you"),
        "log": _("Listen: agent {agent}"),
    },
    Mode.WHISPER.value: {
        "incoming": _("Supervision call: whisper to agent {agent}"),
        "on_call": _("Whispering to agent {agent}: the caller does not hear you"),
        "log": _("Whisper: agent {agent}"),
    },
    Mode.BARGE.value: {
        "incoming": _("Supervision call: barge into agent {agent}'s call"),
        "on_call": _("In agent {agent}'s call: the agent and the caller hear you"),
        "log": _("Barge: agent {agent}"),
    },
}


async def _websocket(request: Request, session: AsyncSession, viewer: Viewer) -> str | None:
    """Where the agent's browser reaches the SIP WebSocket of its tenant's node: the node's
    own, else, for the configured Asterisk, the control plane's setting; None: nowhere."""
    runtime = request.app.state.runtime
    configured: str | None = runtime.phone_websocket
    try:
        node = await placement.node_of_tenant(session, viewer.scope.tenant_id)
    except placement.NoActiveNode:
        return None
    if node.phone_websocket:
        return node.phone_websocket
    return configured if node.name == runtime.local_node else None


async def _browser_device(session: AsyncSession, viewer: Viewer) -> AgentDevice | None:
    """The viewer's own first device of transport webrtc, whatever their role (an operator
    owns none in a tenant)."""
    if viewer.role is Role.OPERATOR:
        return None
    devices, _after = await devices_service.list_devices(
        session, viewer.scope, user_id=viewer.principal.user_id, after_id=None, limit=PAGE_SIZE
    )
    return next((d for d in devices if d.transport == Transport.WEBRTC), None)


async def _first_device(session: AsyncSession, viewer: Viewer) -> AgentDevice | None:
    """The viewer's first device: the one the wallboard's supervision calls ring (a
    supervision that names no device calls its supervisor's first, graam_pbx.supervision)."""
    device: AgentDevice | None = await session.scalar(
        select(AgentDevice)
        .where(
            AgentDevice.tenant_id == viewer.scope.tenant_id,
            AgentDevice.user_id == viewer.principal.user_id,
        )
        .order_by(AgentDevice.id)
        .limit(1)
    )
    return device


async def is_browser_phone(session: AsyncSession, device_id: int) -> bool:
    """Whether the device is a browser phone (transport webrtc)."""
    device = await session.get(AgentDevice, device_id)
    return device is not None and device.transport == Transport.WEBRTC


async def registered(ami: AmiSupervisor, sip_username: str) -> bool:
    """Whether the device has a contact on ``ami``'s Asterisk: for a browser phone, a Phone
    page open (it unregisters when it closes). Unknown (AMI failing) counts as registered:
    the call is then placed, and rings if it can."""
    try:
        answer = await ami.action(
            "Getvar", {"Variable": f"PJSIP_AOR({sip_username},contact)"}, timeout=AMI_TIMEOUT
        )
    except AmiError:
        return True
    return bool((answer.get("Value") or "").strip())


def _origin(url: str) -> str:
    """The scheme, host and port of ``url``: what the page may connect to."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _script_texts(viewer: Viewer) -> str:
    """What the page's script writes, in the viewer's language."""
    gettext = viewer.texts.gettext
    texts: dict[str, object] = {key: gettext(text) for key, text in SCRIPT_TEXTS.items()}
    texts["locale"] = viewer.texts.locale
    texts["supervision"] = {
        mode: {key: gettext(text) for key, text in shown.items()}
        for mode, shown in SUPERVISION_TEXTS.items()
    }
    return json.dumps(texts, separators=(",", ":"), ensure_ascii=False)


@router.get("/phone")
async def phone_page(request: Request, viewer: MemberViewer, session: DbSession) -> Response:
    title = viewer.texts.gettext("Phone")
    if viewer.role is Role.OPERATOR:
        return page(request, viewer, "phone.html", title=title, owner=False)
    device = await _browser_device(session, viewer)
    websocket = await _websocket(request, session, viewer)
    supervises = viewer.role in SUPERVISING_ROLES
    # Where the wallboard's supervision calls ring: this page, or another phone of theirs.
    supervised_on = await _first_device(session, viewer) if supervises else None
    response = page(
        request,
        viewer,
        "phone.html",
        title=title,
        owner=True,
        device=device,
        websocket=websocket,
        supervises=supervises,
        supervised_on=supervised_on,
        queues=await all_queues(session, viewer) if device is not None else [],
        session_check=SESSION_CHECK_SECONDS,
        texts_json=_script_texts(viewer),
    )
    if device is not None and websocket is not None:
        # The page may reach Asterisk's WebSocket, and nothing else beyond its own origin.
        policy = SECURITY_HEADERS["Content-Security-Policy"].replace(
            "connect-src 'self'", f"connect-src 'self' {_origin(websocket)}"
        )
        response.headers["Content-Security-Policy"] = policy
    return response


@router.get("/phone/credentials")
async def phone_credentials(
    request: Request, viewer: MemberViewer, session: DbSession
) -> JSONResponse:
    """What the page registers with: the viewer's own browser device, never another's."""
    device = await _browser_device(session, viewer)
    websocket = await _websocket(request, session, viewer) if device is not None else None
    if device is None or websocket is None:
        raise NotFound("no browser phone")
    return JSONResponse(
        {
            "websocket": websocket,
            "username": device.sip_username,
            "realm": devices_service.SIP_REALM,
            "ha1": device.password_ha1,
            "extension": device.extension,
        },
        headers={"Cache-Control": "no-store"},
    )
