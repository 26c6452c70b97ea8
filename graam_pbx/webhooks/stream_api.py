"""``GET /api/v1/events/stream``: the tenant's events as Server-Sent Events (``stream``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope

from graam_pbx.deps import Reader
from graam_pbx.errors import Unavailable
from graam_pbx.fields import MAX_ID
from graam_pbx.rest import error_responses
from graam_pbx.webhooks.models import EventType
from graam_pbx.webhooks.stream import EventStreams, Stream

log = logging.getLogger(__name__)

TAGS: list[str | Any] = ["events"]
router = APIRouter(prefix="/api/v1/events", tags=TAGS)
HEARTBEAT = 15.0  # seconds without an event before a comment (proxies keep the stream open)
HEARTBEAT_FRAME = b": heartbeat\n\n"
RETRY_MS = 3000  # how soon a client reconnects after the stream broke

DESCRIPTION = """\
Server-Sent Events (`text/event-stream`), one per event of the caller's tenant, in id order:

```
id: 5812
event: call.answered
data: {"id": "5812", "type": "call.answered", "occurred_at": "…", "tenant_id": 12, "data": {…}}
```

`data:` is the very body a webhook delivery carries (the `webhooks` of this document describe
each type's). The stream opens with `retry: 3000` and sends `: heartbeat` after 15 s without
an event. It sends the events stored after it opened; with `Last-Event-ID` (what an
EventSource sends when it reconnects), the events stored after that id instead. A tenant's
events are stored while one of its streams is connected (and 2 minutes after) or an endpoint
subscribes, and kept 7 days: a client reconnecting within 2 minutes misses nothing.
"""


class EventStreamResponse(StreamingResponse):
    """Server-Sent Events that call ``on_end`` however the stream ends (the client gone before
    it started, or cut while sending included)."""

    def __init__(self, content: AsyncIterator[bytes], on_end: Callable[[], None]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self._on_end = on_end

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_end()


def _streams(request: Request) -> EventStreams:
    streams: EventStreams | None = request.app.state.runtime.event_streams
    if streams is None:
        raise Unavailable("event streams are not served by this process", retry_after=1)
    return streams


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "The tenant's events, as they are stored, until the client leaves",
        },
        **error_responses(401, 403, 422, 503),
    },
    summary="The tenant's events as Server-Sent Events, live, resumed after Last-Event-ID",
    description=DESCRIPTION,
)
async def stream_events(
    scope: Reader,
    request: Request,
    types: Annotated[
        list[EventType] | None,
        Query(
            max_length=len(EventType),
            description="Only these types (repeat it: `types=call.ended&types=call.answered`); "
            "every type when left out.",
        ),
    ] = None,
    last_event_id: Annotated[
        int | None,
        Header(
            alias="Last-Event-ID",
            ge=0,
            le=MAX_ID,
            description="Resume after this event id (the last `id:` received).",
        ),
    ] = None,
) -> StreamingResponse:
    streams = _streams(request)
    stream = await streams.open(
        scope.tenant_id, [t.value for t in types] if types else None, last_event_id
    )
    return EventStreamResponse(_frames(streams, stream), on_end=lambda: streams.leave(stream))


async def _frames(streams: EventStreams, stream: Stream) -> AsyncIterator[bytes]:
    yield f"retry: {RETRY_MS}\n\n".encode()
    sent = time.monotonic()
    while True:
        woken = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, sent + HEARTBEAT - time.monotonic())):
                await stream.wait()
                woken = True
        if stream.closed:
            return
        if woken:
            try:
                events = await streams.read(stream)
            except Exception:
                # The client reconnects, with the last id it received.
                log.exception("event stream: events not read; the stream ends")
                return
            if events:
                yield b"".join(event.frame() for event in events)
                sent = time.monotonic()
                continue
        if time.monotonic() - sent >= HEARTBEAT:
            yield HEARTBEAT_FRAME
            sent = time.monotonic()
