"""The tenant's event stream (``GET /api/v1/events/stream``) over a real HTTP connection, in
front of the session's Postgres: events made by Postgres' triggers (an agent's new state, a
CDR) and by the control plane's recorder (an AMI queue event) reach the stream of their
tenant, never another's; a stream resumes after ``Last-Event-ID``; its types filter; an event
committed late is not skipped; the body is a webhook delivery's; who may open one.

The app is the module's running app (``running_app``), also served by uvicorn on a loopback
port: the in-process client buffers whole answers, and a stream never ends by itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents.models import AgentStateInterval
from graam_pbx.ami import EventBus, Message
from graam_pbx.cdr.models import Cdr
from graam_pbx.sandbox.ports import free_port
from graam_pbx.webhooks import stream_api
from graam_pbx.webhooks.models import EventStream, EventType
from graam_pbx.webhooks.payloads import BODIES, EventCdr
from graam_pbx.webhooks.recorder import WebhookRecorder
from graam_pbx.webhooks.stream import EventStreams
from tests.conftest import RunningApp
from tests.factories import TenantWorld, fields_of, make_world, unique
from tests.waiting import until
from tests.webhook_receiver import receiver

Sessions = async_sessionmaker[AsyncSession]
STREAM = "/api/v1/events/stream"
HOST = "127.0.0.223"  # this file's webhook receiver; no other test uses it
Frame = dict[str, str]


class _Server(uvicorn.Server):
    """uvicorn without signal handlers of its own."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@pytest.fixture(scope="module")
async def base_url(running_app: RunningApp) -> AsyncIterator[str]:
    """The running app, also served over HTTP (its lifespan already runs)."""
    port = free_port()
    server = _Server(
        uvicorn.Config(
            running_app.app,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_level="warning",
            access_log=False,
        )
    )
    serving = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started or serving.done()

    await until(started, "uvicorn listening")
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


@pytest.fixture(scope="module")
def streams(running_app: RunningApp) -> EventStreams:
    hub = running_app.runtime.event_streams
    assert hub is not None
    return hub


async def api_key(client: httpx.AsyncClient, world: TenantWorld, areas: list[str]) -> str:
    made = await client.post(
        "/api/v1/auth/api-keys",
        headers=world.admin.headers,
        json={"name": unique("key"), "read_only": True, "areas": areas},
    )
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


class Opened:
    """An open stream, read event by event."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def frame(self) -> Frame:
        """The next block of fields (an event, ``retry``, or a comment)."""
        fields: Frame = {}
        async for line in self._lines:
            if not line:
                if fields:
                    return fields
                continue
            name, _, value = line.partition(":")
            fields[name or "comment"] = value.removeprefix(" ")
        raise AssertionError(f"the stream ended; last fields {fields}")

    async def events(self, count: int, timeout: float = 30) -> list[Frame]:
        """The next ``count`` events (comments and ``retry`` skipped)."""
        found: list[Frame] = []
        async with asyncio.timeout(timeout):
            while len(found) < count:
                fields = await self.frame()
                if "id" in fields:
                    found.append(fields)
        return found


@contextlib.asynccontextmanager
async def opened(
    base_url: str, key: str, *, last_event_id: int | None = None, params: Any = None
) -> AsyncIterator[Opened]:
    """A stream as a client opens it; yielded once it said ``retry`` (it is registered)."""
    headers = {"Authorization": f"Bearer {key}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
        http.stream("GET", STREAM, headers=headers, params=params) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = Opened(response)
        async with asyncio.timeout(30):
            assert (await stream.frame()) == {"retry": "3000"}
        yield stream


async def stored(sessions: Sessions, tenant_id: int, types: list[str]) -> list[int]:
    """Events written straight into ``webhook_events`` (as the recorder writes them)."""
    async with sessions() as session, session.begin():
        result = await session.execute(
            text(
                "INSERT INTO webhook_events (tenant_id, type, ordering_key, occurred_at, payload) "
                "SELECT :tenant, t, 'call:x', now(), CAST(:payload AS jsonb) "
                "FROM unnest(CAST(:types AS text[])) WITH ORDINALITY AS v(t, n) ORDER BY n "
                "RETURNING id"
            ),
            {"tenant": tenant_id, "types": types, "payload": json.dumps({"call_id": "x"})},
        )
        return [row[0] for row in result]


async def agent_state(sessions: Sessions, world: TenantWorld, state: str) -> None:
    """A new stretch of the agent's timeline (its trigger makes agent.state_changed)."""
    async with sessions() as session, session.begin():
        session.add(
            AgentStateInterval(
                tenant_id=world.tenant_id,
                agent_id=world.agent.user_id,
                state=state,
                started_at=datetime.now(UTC),
            )
        )


async def cdr(sessions: Sessions, world: TenantWorld, linkedid: str) -> None:
    """A leg's CDR written (its trigger makes call.ended)."""
    started = datetime.now(UTC) - timedelta(minutes=1)
    async with sessions() as session, session.begin():
        await session.execute(text("SELECT cdrs_ensure_partition(now())"))
        session.add(
            Cdr(
                started_at=started,
                system_name="test",
                uniqueid=unique("u"),
                sequence=0,
                linkedid=linkedid,
                ended_at=started + timedelta(seconds=30),
                duration=Decimal("30"),
                billsec=Decimal("28.5"),
                disposition="ANSWERED",
                tenant_id=world.tenant_id,
                direction="inbound",
                src="+33612345678",
                dst="201",
                dcontext="tenant-in",
                clid='"Caller" <+33612345678>',
                channel="PJSIP/trunk-0001",
                dstchannel="PJSIP/201-0001",
                lastapp="Dial",
                lastdata="PJSIP/201",
                accountcode="",
                peeraccount="",
                amaflags="DOCUMENTATION",
                userfield="",
                source="ami",
                agent_user_id=world.agent.user_id,
                forwarded_from=world.admin.user_id,
            )
        )


def body_of(frame: Frame) -> dict[str, Any]:
    """The event's body, checked against the documented model of its type."""
    body: dict[str, Any] = json.loads(frame["data"])
    assert body["id"] == frame["id"] and body["type"] == frame["event"], frame
    model = BODIES[EventType(frame["event"])]
    model.model_validate(body)
    data = model.model_fields["data"].annotation
    assert isinstance(data, type) and issubclass(data, BaseModel)
    assert set(body["data"]) == set(data.model_fields), body  # every field, nothing else
    return body


async def test_a_stream_sends_its_tenants_events_from_triggers_never_another_tenants(
    client: httpx.AsyncClient, sessions: Sessions, base_url: str
) -> None:
    a = await make_world(client, sessions)
    b = await make_world(client, sessions)
    key = await api_key(client, a, ["events"])
    async with receiver(HOST) as hooks:
        made = await client.post(
            "/api/v1/webhooks",
            headers=a.admin.headers,
            json={"url": hooks.url, "events": ["agent.state_changed"]},
        )
        assert made.status_code == 201, made.text
        async with opened(base_url, key) as stream:
            async with sessions() as session:
                lease = await session.get(EventStream, a.tenant_id)
            assert lease is not None and lease.expires_at > datetime.now(UTC)
            # Another tenant's event is stored (written straight), before A's.
            (other,) = await stored(sessions, b.tenant_id, ["call.ended"])
            await agent_state(sessions, a, "available")  # A subscribes to it: delivered too
            await cdr(sessions, a, "graam-stream-1")  # stored for the stream alone
            (mine,) = await stored(sessions, a.tenant_id, ["campaign.finished"])
            frames = await stream.events(3)
        (delivered,) = await hooks.count(1)
    # Made by the triggers: as documented. The last, written straight, has its own data.
    bodies = [body_of(frames[0]), body_of(frames[1]), json.loads(frames[2]["data"])]
    assert [body["type"] for body in bodies] == [
        "agent.state_changed",
        "call.ended",
        "campaign.finished",
    ]
    ids = [int(frame["id"]) for frame in frames]
    assert ids == sorted(ids) and other < ids[0] and ids[-1] == mine
    assert {body["tenant_id"] for body in bodies} == {a.tenant_id}
    assert bodies[0]["data"]["agent_user_id"] == a.agent.user_id
    assert bodies[0]["data"]["state"] == "available"
    assert bodies[1]["data"]["call_id"] == "graam-stream-1"
    assert bodies[1]["data"]["cdr"]["agent_user_id"] == a.agent.user_id
    assert bodies[1]["data"]["cdr"]["forwarded_from"] == a.admin.user_id
    assert set(bodies[1]["data"]["cdr"]) == set(EventCdr.model_fields)  # every field, no other
    # The very body a webhook delivery carries.
    assert delivered.body == frames[0]["data"].encode()


async def test_a_stream_resumes_after_the_last_event_id_its_client_received(
    client: httpx.AsyncClient, sessions: Sessions, base_url: str
) -> None:
    world = await make_world(client, sessions)
    key = await api_key(client, world, ["events"])
    async with opened(base_url, key) as stream:
        first = await stored(sessions, world.tenant_id, ["call.ringing", "call.answered"])
        received = await stream.events(2)
    assert [int(frame["id"]) for frame in received] == first
    # Stored while the client is away (its tenant's lease still runs).
    later = await stored(sessions, world.tenant_id, ["call.ended", "call.ended"])
    async with opened(base_url, key, last_event_id=first[-1]) as stream:
        resumed = await stream.events(2)
    assert [int(frame["id"]) for frame in resumed] == later
    async with opened(base_url, key, last_event_id=first[0]) as stream:
        again = await stream.events(3)
    assert [int(frame["id"]) for frame in again] == [first[1], *later]


async def test_a_stream_sends_the_types_asked_for_only(
    client: httpx.AsyncClient, sessions: Sessions, base_url: str
) -> None:
    world = await make_world(client, sessions)
    key = await api_key(client, world, ["events"])
    params = [("types", "call.ended"), ("types", "voicemail.left")]
    async with opened(base_url, key, params=params) as stream:
        ids = await stored(
            sessions, world.tenant_id, ["call.ringing", "call.ended", "agent.state_changed"]
        )
        (more,) = await stored(sessions, world.tenant_id, ["voicemail.left"])
        received = await stream.events(2)
    assert [int(frame["id"]) for frame in received] == [ids[1], more]
    assert [frame["event"] for frame in received] == ["call.ended", "voicemail.left"]


async def test_an_event_committed_after_a_later_one_is_sent_first_not_skipped(
    client: httpx.AsyncClient, sessions: Sessions, base_url: str, streams: EventStreams
) -> None:
    world = await make_world(client, sessions)
    key = await api_key(client, world, ["events"])
    async with opened(base_url, key) as stream, sessions() as slow:

        async def settled() -> bool:
            return streams.final is not None

        await until(settled, "the streams' first observations settled")
        # A transaction takes an id and stays open; a later one commits first.
        async with slow.begin():
            early = await slow.scalar(
                text(
                    "INSERT INTO webhook_events (tenant_id, type, occurred_at, payload) "
                    "VALUES (:tenant, 'call.ringing', now(), '{}') RETURNING id"
                ),
                {"tenant": world.tenant_id},
            )
            (late,) = await stored(sessions, world.tenant_id, ["call.answered"])
            seen = streams.observations

            async def observed_late() -> bool:
                # An observation made after the later commit: the gap is before it.
                return streams.observations > seen + 1

            await until(observed_late, "an observation of the later event")
            final = streams.final
            assert final is not None and final < early < late
        received = await stream.events(2)
    assert [int(frame["id"]) for frame in received] == [early, late]


async def test_the_recorders_queue_events_reach_the_stream(
    client: httpx.AsyncClient, sessions: Sessions, base_url: str
) -> None:
    world = await make_world(client, sessions)
    key = await api_key(client, world, ["events"])
    bus = EventBus()
    recorder = WebhookRecorder(sessions, bus, name=unique("recorder"))
    await bus.start()
    await recorder.start()
    try:
        async with opened(base_url, key) as stream:
            bus.publish(
                Message(
                    [
                        ("Event", "AgentCalled"),
                        ("Queue", f"t{world.tenant_id}-q7"),
                        ("Linkedid", "graam-stream-rec"),
                        ("Uniqueid", "graam-stream-rec"),
                        ("CallerIDNum", "+33612345678"),
                        ("CallerIDName", "Caller"),
                        ("MemberName", f"agent-{world.agent.user_id}"),
                        ("DestUniqueid", "graam-stream-rec.2"),
                    ]
                )
            )
            (frame,) = await stream.events(1)
    finally:
        await recorder.stop()
        await bus.stop()
    body = body_of(frame)
    assert body["type"] == "call.ringing" and body["tenant_id"] == world.tenant_id
    assert body["data"]["call_id"] == "graam-stream-rec" and body["data"]["queue_id"] == 7


async def test_a_quiet_stream_sends_a_heartbeat(
    client: httpx.AsyncClient,
    sessions: Sessions,
    base_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = await make_world(client, sessions)
    key = await api_key(client, world, ["events"])
    monkeypatch.setattr(stream_api, "HEARTBEAT", 0.1)  # 15 s in earnest
    async with opened(base_url, key) as stream, asyncio.timeout(30):
        assert await stream.frame() == {"comment": "heartbeat"}


async def test_who_may_open_a_stream(
    client: httpx.AsyncClient, sessions: Sessions, base_url: str
) -> None:
    world = await make_world(client, sessions)
    queues_key = await api_key(client, world, ["queues"])
    refused = await client.get(STREAM, headers={"Authorization": f"Bearer {queues_key}"})
    assert refused.status_code == 403, refused.text
    assert "not scoped to events" in refused.json()["message"]
    agent = await client.get(STREAM, headers=world.agent.headers)
    assert agent.status_code == 403, agent.text
    assert (await client.get(STREAM)).status_code == 401
    for headers, params, field in (
        ({"Last-Event-ID": "abc"}, None, "header.Last-Event-ID"),
        ({"Last-Event-ID": "-1"}, None, "header.Last-Event-ID"),
        ({}, {"types": "call.exploded"}, "query.types.0"),
    ):
        bad = await client.get(STREAM, headers={**world.admin.headers, **headers}, params=params)
        assert bad.status_code == 422, bad.text
        assert fields_of(bad) == {field}, bad.text
    # Supervisors and admins (and the operator acting in the tenant) stream.
    for role in ("supervisor", "admin", "operator"):
        async with (
            httpx.AsyncClient(base_url=base_url, timeout=30) as http,
            http.stream("GET", STREAM, headers=world.headers(role)) as response,
        ):
            assert response.status_code == 200, role
    async with sessions() as session:
        leases = await session.scalars(
            select(EventStream.tenant_id).where(EventStream.tenant_id == world.tenant_id)
        )
        assert list(leases) == [world.tenant_id]
