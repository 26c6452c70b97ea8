"""The wallboard in the browser, live from the control plane's own state: a real caller waits
in a real queue, a sipp agent answers, the figures count it; the page reconnects by itself
after a control-plane restart; a tenant's stream carries nothing of another tenant's."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, expect

from graam_pbx.app import Endpoints, create_app
from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.cli import _Server as RunServer
from graam_pbx.cli import api_server_config
from graam_pbx.sandbox.http import LoopbackHttp
from graam_pbx.sandbox.ports import free_port
from graam_pbx.sandbox.postgres import EmbeddedPostgres
from graam_pbx.settings import Settings
from tests.conftest import Asterisk, RunningApp, start_app
from tests.e2e.agent_tenant import one_agent_queue, retire
from tests.e2e.sipp import Sipp, SippPool
from tests.e2e.test_agent_login import (
    Sessions,
    carrier_caller,
    configured,
    new_tenant,
    register,
    session_url,
)
from tests.e2e.web.browser import SEEN_WITHIN_MS, assert_accessible, log_in, save_screenshot
from tests.factories import PASSWORD, TenantWorld, make_world
from tests.integration.test_console_auth import log_in as console_log_in

REASONS = "/api/v1/pause-reasons"
LUNCH = {"code": "2", "label": "Lunch"}


class Scene:
    """A tenant whose one agent (its phone registered, answering for five seconds) is logged
    in and paused for lunch, and the number that sends callers to its queue."""

    def __init__(self, world: TenantWorld, agent_id: int, queue_id: int, did: str, phone: Sipp):
        self.world = world
        self.agent_id = agent_id
        self.queue_id = queue_id
        self.did = did
        self.phone = phone


async def paused_agent_scene(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> Scene:
    world, agent, did = await one_agent_queue(pbx, client, sessions, applier, wrapup_seconds=0)
    admin = world.admin.headers
    (queue,) = (await client.get("/api/v1/queues", headers=admin)).json()["items"]
    # Amber from the first caller, red from the second.
    changed = await client.patch(
        f"/api/v1/queues/{queue['id']}",
        headers=admin,
        json={"wallboard_waiting_warn": 1, "wallboard_waiting_alarm": 2},
    )
    assert changed.status_code == 200, changed.text
    phone = await register(tmp_path, asterisk, sipp, [agent], "uas_answer_talk_long.xml")
    await paused_for_lunch(client, world, agent.user_id)
    # The pause is answered once committed; Asterisk's member follows shortly after. A caller
    # sent before it does would be offered to the agent.
    await paused_in_asterisk(pbx, f"t{world.tenant_id}-q{queue['id']}", agent.sip_username)
    return Scene(world, agent.user_id, queue["id"], did, phone)


async def paused_in_asterisk(pbx: RunningApp, queue: str, sip_username: str) -> None:
    """Wait until Asterisk has the agent's phone in ``queue``, paused."""

    async def paused() -> bool:
        events = await pbx.runtime.ami.action_list("QueueStatus", {"Queue": queue})
        return any(
            event.name == "QueueMember"
            and (event.get("Location") or event.get("Interface", "")) == f"PJSIP/{sip_username}"
            and event.get("Paused") == "1"
            for event in events
        )

    try:
        async with asyncio.timeout(30):
            while not await paused():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"PJSIP/{sip_username} not paused in {queue} within 30 s") from None


async def paused_for_lunch(client: httpx.AsyncClient, world: TenantWorld, agent_id: int) -> None:
    """The catalogue's reason 2 · Lunch; the agent logged in by its supervisor, paused for it."""
    reason = await client.post(REASONS, headers=world.admin.headers, json=LUNCH)
    assert reason.status_code == 201, reason.text
    login = await client.post(session_url(agent_id), headers=world.supervisor.headers)
    assert login.status_code == 201, login.text
    await pause(client, world, agent_id, paused=True)


async def pause(client: httpx.AsyncClient, world: TenantWorld, agent_id: int, paused: bool) -> None:
    body: dict[str, Any] = (
        {"paused": True, "reason": LUNCH["code"]} if paused else {"paused": False}
    )
    response = await client.post(
        session_url(agent_id) + "/pause", headers=world.supervisor.headers, json=body
    )
    assert response.status_code == 200, response.text


async def waiting_caller(sipp: SippPool, did: str) -> Sipp:
    """A carrier's caller who presses 1 and waits in the queue until an agent hangs up."""
    return await carrier_caller(sipp, did, timeout=120).start()


async def open_wallboard(page: Page, console: str, world: TenantWorld) -> None:
    await log_in(page, console, world.slug, world.supervisor.email, PASSWORD)
    await page.goto(f"{console}/wallboard")
    await expect(page.locator("#wallboard-status")).to_have_text("Live", timeout=SEEN_WITHIN_MS)


def field(page: Page, row: str, name: str) -> Any:
    return page.locator(f'{row} [data-field="{name}"]')


async def test_a_caller_waits_an_agent_answers_and_the_call_is_counted(
    page: Page,
    console: str,
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    scene = await paused_agent_scene(pbx, client, sessions, applier, asterisk, sipp, tmp_path)
    queue = f'#wallboard-queues tr[data-queue="{scene.queue_id}"]'
    agent = f'#wallboard-agents tr[data-agent="{scene.agent_id}"]'
    await open_wallboard(page, console, scene.world)
    # Paused with its reason, from the catalogue.
    await expect(field(page, agent, "state")).to_have_text("Paused")
    await expect(field(page, agent, "reason")).to_have_text("2 · Lunch")
    await expect(field(page, queue, "waiting")).to_have_text("0")

    caller = await waiting_caller(sipp, scene.did)
    await expect(field(page, queue, "waiting")).to_have_text("1", timeout=SEEN_WITHIN_MS)
    await expect(field(page, queue, "level")).to_have_text("Warning")
    await expect(page.locator("#wallboard-alerts")).to_contain_text("support: 1 waiting (Warning)")
    await assert_accessible(page)
    await save_screenshot(page, "wallboard")

    await pause(client, scene.world, scene.agent_id, paused=False)  # the queue rings the agent
    await expect(field(page, agent, "state")).to_have_text("On a call", timeout=SEEN_WITHIN_MS)
    await expect(field(page, queue, "waiting")).to_have_text("0")
    await expect(field(page, queue, "level")).to_have_text("OK")

    answered = await scene.phone.wait()  # the agent hangs up after five seconds
    assert answered.ok, answered.describe()
    ended = await caller.wait()
    assert ended.ok, ended.describe()
    await expect(field(page, queue, "answered")).to_have_text("1", timeout=SEEN_WITHIN_MS)
    await expect(field(page, queue, "offered")).to_have_text("1")
    await expect(field(page, agent, "state")).to_have_text("Available")
    await retire(pbx, applier, scene.world.tenant_id)


class ControlPlane:
    """A second app on the session's database and Asterisk (it generates no configuration),
    served on a fixed port, so that it can be stopped and another started in its place."""

    def __init__(self, postgres: EmbeddedPostgres, asterisk: Asterisk, port: int) -> None:
        self.endpoints = Endpoints(database_url=postgres.url("pbx"), ami=asterisk.ami_config())
        self.port = port
        self._stack = contextlib.AsyncExitStack()
        self._server: LoopbackHttp | None = None
        self.running: RunningApp | None = None

    async def start(self) -> str:
        start = contextlib.asynccontextmanager(start_app)
        self.running = await self._stack.enter_async_context(start(self.endpoints))
        await self.running.runtime.ami.wait_connected(timeout=20)
        self._server = LoopbackHttp(self.running.app, self.port)
        await self._server.start()
        return self._server.url

    async def stop(self) -> None:
        """As ``graam-pbx run`` stops: the live streams end, the server, then the lifespan."""
        if self.running is not None and self.running.runtime.live is not None:
            self.running.runtime.live.close_streams()
        if self._server is not None:
            await self._server.stop()
        await self._stack.aclose()


async def test_after_a_control_plane_restart_the_page_reconnects_and_shows_the_truth(
    page: Page,
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    postgres: EmbeddedPostgres,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    scene = await paused_agent_scene(pbx, client, sessions, applier, asterisk, sipp, tmp_path)
    queue = f'#wallboard-queues tr[data-queue="{scene.queue_id}"]'
    agent = f'#wallboard-agents tr[data-agent="{scene.agent_id}"]'
    caller = await waiting_caller(sipp, scene.did)
    port = free_port()
    first = ControlPlane(postgres, asterisk, port)
    url = await first.start()
    second: ControlPlane | None = None
    try:
        await open_wallboard(page, url, scene.world)
        await expect(field(page, queue, "waiting")).to_have_text("1", timeout=SEEN_WITHIN_MS)
        await expect(field(page, agent, "reason")).to_have_text("2 · Lunch")
        seq_before = int(await page.locator("#wallboard").get_attribute("data-seq") or 0)

        await first.stop()
        status = page.locator("#wallboard-status")
        await expect(status).to_have_text("Reconnecting…", timeout=SEEN_WITHIN_MS)

        second = ControlPlane(postgres, asterisk, port)
        await second.start()
        # Back by itself, with the new process's board: the caller still waits (read from
        # Asterisk at its start), the agent still paused for lunch (from the database).
        await expect(status).to_have_text("Live", timeout=SEEN_WITHIN_MS)
        # "Live" is shown when the stream opens; its first board follows.
        await expect(page.locator("#wallboard")).not_to_have_attribute(
            "data-seq", str(seq_before), timeout=SEEN_WITHIN_MS
        )
        seq_after = int(await page.locator("#wallboard").get_attribute("data-seq") or 0)
        assert seq_after > seq_before
        await expect(field(page, queue, "waiting")).to_have_text("1", timeout=SEEN_WITHIN_MS)
        await expect(field(page, queue, "level")).to_have_text("Warning")
        await expect(field(page, agent, "state")).to_have_text("Paused")
        await expect(field(page, agent, "reason")).to_have_text("2 · Lunch")

        # And it is live: the agent comes back and answers, the caller leaves the queue. (The
        # session's own control plane follows the same Asterisk and writes the agent's moves
        # and the call, which entered before this one started: its queue's events are what
        # this one sees for itself.)
        await pause(client, scene.world, scene.agent_id, paused=False)
        await expect(field(page, queue, "waiting")).to_have_text("0", timeout=SEEN_WITHIN_MS)
        await expect(field(page, queue, "level")).to_have_text("OK")
        assert (await scene.phone.wait()).ok
        assert (await caller.wait()).ok
    finally:
        if caller.running:
            await caller.stop()
        if second is not None:
            await second.stop()
        else:
            await first.stop()
    await retire(pbx, applier, scene.world.tenant_id)


# ---- the stream itself ------------------------------------------------------------------------


async def console_cookie(console: str, world: TenantWorld, role: str) -> str:
    async with httpx.AsyncClient(base_url=console) as browser:
        answer = await console_log_in(browser, world, role)
        assert answer.status_code == 303, answer.text
        return browser.cookies["graam_session"]


async def boards(response: httpx.Response) -> AsyncIterator[tuple[dict[str, str], str]]:
    """Each event of a Server-Sent Events stream: its fields and its raw text (comments too)."""
    fields: dict[str, str] = {}
    raw: list[str] = []
    async for line in response.aiter_lines():
        raw.append(line)
        if line == "":
            if fields or raw[:-1]:
                yield fields, "\n".join(raw)
            fields, raw = {}, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")


async def test_a_tenants_stream_never_carries_another_tenants_queues_agents_or_events(
    console: str,
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    a = await paused_agent_scene(pbx, client, sessions, applier, asterisk, sipp, tmp_path)
    b_world, b_made = await new_tenant(pbx, client, sessions, licences=1, agents=1)
    (b_agent,) = b_made.agents
    await configured(applier, {b_world.tenant_id})
    stream_url = f"{console}/live/wallboard"

    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(stream_url)).status_code == 401
        agent_cookie = await console_cookie(console, a.world, "agent")
        refused = await http.get(stream_url, headers={"Cookie": f"graam_session={agent_cookie}"})
        assert refused.status_code == 403
        b_cookie = await console_cookie(console, b_world, "supervisor")
        a_cookie = await console_cookie(console, a.world, "supervisor")
        b_headers = {"Cookie": f"graam_session={b_cookie}"}
        a_headers = {"Cookie": f"graam_session={a_cookie}"}
        # The page too, as rendered without script.
        b_page = await http.get(f"{console}/wallboard", headers=b_headers)
        assert b_page.status_code == 200
        assert f'data-queue="{b_made.queue_id}"' in b_page.text
        assert f'data-queue="{a.queue_id}"' not in b_page.text

        async with (
            http.stream(
                "GET", stream_url, headers=b_headers, params={"tenant": a.world.tenant_id}
            ) as b_stream,
            http.stream("GET", stream_url, headers=a_headers) as a_stream,
        ):
            assert b_stream.status_code == 200
            assert b_stream.headers["content-type"].startswith("text/event-stream")
            b_events = boards(b_stream)
            a_events = boards(a_stream)
            seen_by_b: list[str] = []

            async def next_board(events: AsyncIterator[tuple[dict[str, str], str]]) -> Any:
                async with asyncio.timeout(SEEN_WITHIN_MS / 1000):
                    while True:
                        fields, raw = await anext(events)
                        if events is b_events:
                            seen_by_b.append(raw)
                        if fields.get("event") == "board":
                            assert fields["id"] == str(json.loads(fields["data"])["seq"])
                            return json.loads(fields["data"])

            first_b = await next_board(b_events)
            assert first_b["tenant_id"] == b_world.tenant_id
            assert [q["id"] for q in first_b["queues"]] == [b_made.queue_id]
            assert first_b["agents"] == []

            # Tenant A is busy: a caller waits, its agent comes back and answers.
            board = await next_board(a_events)
            caller = await waiting_caller(sipp, a.did)
            while not any(q["waiting"] for q in board["queues"]):
                board = await next_board(a_events)
            await pause(client, a.world, a.agent_id, paused=False)
            while not any(x["state"] == "on-call" for x in board["agents"]):
                board = await next_board(a_events)

            # Then tenant B's own agent logs in: the next boards B sees are its own only.
            login = await client.post(
                session_url(b_agent.user_id), headers=b_world.supervisor.headers
            )
            assert login.status_code == 201, login.text
            board = await next_board(b_events)
            while not board["agents"]:
                board = await next_board(b_events)
            assert [x["user_id"] for x in board["agents"]] == [b_agent.user_id]
            assert board["agents"][0]["state"] == "available"

    for raw in seen_by_b:
        if "data:" not in raw:
            continue  # the retry advice, a heartbeat
        data = json.loads(raw.split("data: ", 1)[1])
        assert data["tenant_id"] == b_world.tenant_id
        assert {q["id"] for q in data["queues"]} == {b_made.queue_id}
        assert a.agent_id not in {x["user_id"] for x in data["agents"]}
        assert {x["queue_id"] for x in data["alerts"]} <= {b_made.queue_id}
    assert (await caller.wait()).ok
    assert (await a.phone.wait()).ok
    await retire(pbx, applier, a.world.tenant_id)
    await retire(pbx, applier, b_world.tenant_id)


async def test_the_wallboard_in_french(
    browser: Browser,
    console: str,
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
) -> None:
    world, made = await new_tenant(pbx, client, sessions, licences=1, agents=1)
    (agent,) = made.agents
    await paused_for_lunch(client, world, agent.user_id)

    context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        await page.goto(f"{console}/login")
        await page.get_by_label("Client").fill(world.slug)
        await page.get_by_label("E-mail").fill(world.supervisor.email)
        await page.get_by_label("Mot de passe").fill(PASSWORD)
        await page.get_by_role("button", name="Se connecter").click()
        await expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible(
            timeout=SEEN_WITHIN_MS
        )
        await page.goto(f"{console}/wallboard")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Tableau mural")
        await expect(page.locator("#wallboard-status")).to_have_text(
            "En direct", timeout=SEEN_WITHIN_MS
        )
        await expect(page.get_by_role("columnheader", name="Appels en attente")).to_be_visible()
        row = f'#wallboard-agents tr[data-agent="{agent.user_id}"]'
        await expect(field(page, row, "state")).to_have_text("En pause")
        await expect(field(page, row, "reason")).to_have_text("2 · Lunch")
        await expect(page.locator("#wallboard-no-alerts")).to_have_text(
            "Aucun seuil n'est franchi."
        )
        await assert_accessible(page)
        await save_screenshot(page, "wallboard_fr")
    finally:
        await context.close()
    await retire(pbx, applier, world.tenant_id)


async def test_a_stopping_control_plane_ends_its_streams_instead_of_waiting_for_them(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    asterisk: Asterisk,
    postgres: EmbeddedPostgres,
    tmp_path: Path,
) -> None:
    """Served as ``graam-pbx run`` serves it (uvicorn running the lifespan): asked to stop
    while a wallboard streams, it stops, and the stream ends cleanly."""
    world = await make_world(client, sessions)
    settings = Settings(
        api_host="127.0.0.1",
        api_port=free_port(),
        agi_port=free_port(),
        cdr_dir=tmp_path / "cdr",
        queue_calls_dir=tmp_path / "queue-calls",
    )
    app = create_app(
        settings, Endpoints(database_url=postgres.url("pbx"), ami=asterisk.ami_config())
    )
    server = RunServer(api_server_config(app, settings))
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            await server.listening.wait()
        console = f"http://127.0.0.1:{settings.api_port}"
        cookie = await console_cookie(console, world, "supervisor")
        async with (
            httpx.AsyncClient(timeout=30) as http,
            http.stream(
                "GET", f"{console}/live/wallboard", headers={"Cookie": f"graam_session={cookie}"}
            ) as stream,
        ):
            events = boards(stream)
            async with asyncio.timeout(SEEN_WITHIN_MS / 1000):
                fields, _ = await anext(events)
                while fields.get("event") != "board":
                    fields, _ = await anext(events)
            server.request_exit()  # what SIGTERM does
            async with asyncio.timeout(30):
                rest = [raw async for _, raw in events]
        assert all("data:" not in raw for raw in rest), rest  # ended, not cut mid-board
        async with asyncio.timeout(30):
            await serving
    finally:
        if not serving.done():
            server.force_exit = True
            server.should_exit = True
            await asyncio.wait([serving], timeout=30)
