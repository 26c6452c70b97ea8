"""The console's phone: an agent's browser device (a device of transport ``webrtc``),
registered from this page while it is open, to take and make calls in the browser.

The page registers over Asterisk's SIP WebSocket (``Endpoints.phone_websocket``) with the
device's credentials, which it asks of ``/phone/credentials``: the device's digest hash
(HA1, what Asterisk checks; the password itself is never kept), given only to the agent
who owns the device, on its own console session, never cached. The hash answers digests
for this device only, as the password would: the agent holds the device either way.

Calls, logins and licences are those of any device: the agent logs in to the queues with it
on My day (or its supervisor, or the API), and a phone that unregisters (the page closed)
ends the session as any phone's does (the agent worker).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.agents import service as devices_service
from graam_pbx.agents.models import AgentDevice
from graam_pbx.agents.schemas import Transport
from graam_pbx.auth.principal import Role
from graam_pbx.cluster import placement
from graam_pbx.deps import DbSession
from graam_pbx.errors import NotFound
from graam_pbx.web.agents import PAGE_SIZE
from graam_pbx.web.i18n import _
from graam_pbx.web.render import SECURITY_HEADERS, page
from graam_pbx.web.reports import all_queues
from graam_pbx.web.viewer import AgentViewer, Viewer, console_router

router = console_router()

# Seconds between two checks by the page that its console session still holds: once it does
# not (logged out, expired, the device taken away), the phone unregisters and stops.
SESSION_CHECK_SECONDS = 30

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
    """The agent's first device of transport webrtc."""
    devices, _after = await devices_service.list_devices(
        session, viewer.scope, user_id=viewer.principal.user_id, after_id=None, limit=PAGE_SIZE
    )
    return next((d for d in devices if d.transport == Transport.WEBRTC), None)


def _origin(url: str) -> str:
    """The scheme, host and port of ``url``: what the page may connect to."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@router.get("/phone")
async def phone_page(request: Request, viewer: AgentViewer, session: DbSession) -> Response:
    title = viewer.texts.gettext("Phone")
    if viewer.role is not Role.AGENT:
        return page(request, viewer, "phone.html", title=title, agent=False)
    device = await _browser_device(session, viewer)
    websocket = await _websocket(request, session, viewer)
    response = page(
        request,
        viewer,
        "phone.html",
        title=title,
        agent=True,
        device=device,
        websocket=websocket,
        queues=await all_queues(session, viewer) if device is not None else [],
        session_check=SESSION_CHECK_SECONDS,
        texts_json=json.dumps(
            {key: viewer.texts.gettext(text) for key, text in SCRIPT_TEXTS.items()}
            | {"locale": viewer.texts.locale},
            separators=(",", ":"),
            ensure_ascii=False,
        ),
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
    request: Request, viewer: AgentViewer, session: DbSession
) -> JSONResponse:
    """What the page registers with: the agent's own browser device, never another's."""
    device = await _browser_device(session, viewer) if viewer.role is Role.AGENT else None
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
