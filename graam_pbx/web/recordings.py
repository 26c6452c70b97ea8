"""The Recordings page: the latest recordings the viewer may play (admins and supervisors:
the tenant's; agents: their own when the tenant allows it), each with a player and a
download. The same service and audio answer as ``/api/v1/recordings`` (ranges, audit)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Request
from fastapi.responses import Response

from graam_pbx.deps import DbSession
from graam_pbx.recordings import service
from graam_pbx.recordings.api import audio_response
from graam_pbx.recordings.store import RecordingStore
from graam_pbx.web.i18n import _
from graam_pbx.web.render import page
from graam_pbx.web.viewer import MemberViewer, console_router

router = console_router()

LATEST = 100  # recordings listed

DIRECTIONS = {"inbound": _("Inbound"), "outbound": _("Outbound"), "internal": _("Internal")}


@router.get("/recordings")
async def recordings_page(request: Request, viewer: MemberViewer, session: DbSession) -> Response:
    recordings = await service.latest_recordings(session, viewer.scope, LATEST)
    agents, queues = await service.names(session, viewer.scope, recordings)
    return page(
        request,
        viewer,
        "recordings.html",
        title=viewer.texts.gettext("Recordings"),
        recordings=recordings,
        agents=agents,
        queues=queues,
        directions=DIRECTIONS,
        latest=LATEST,
    )


@router.get("/recordings/{recording_id}/audio")
async def recording_audio(
    request: Request,
    recording_id: int,
    viewer: MemberViewer,
    session: DbSession,
    download: bool = False,
    range_header: Annotated[str | None, Header(alias="range")] = None,
) -> Response:
    store: RecordingStore = request.app.state.runtime.recordings
    return await audio_response(
        session, viewer.scope, store, recording_id, range_header, download=download
    )
