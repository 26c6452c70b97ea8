"""The dialer's real run: campaigns through a real Asterisk, sipp far ends and sipp agents.

``real_run(quick)`` is called by ``python -m bench.dialer`` (this module prints nothing of its
own). The whole control plane runs in this process as in production, the dialer among its
components, against its own embedded Postgres and Asterisk sandbox. A tenant's agents (AGENTS,
--quick: QUICK_AGENTS) are logged in through the API from devices registered by sipp (each
call: answered, TALK_S of talk, hung up by the agent); the tenant's outbound route leaves
through a trunk to one sipp far end that answers as the number says
(tests/e2e/scenarios/campaign_far_end.xml: people, busy lines, lines nobody answers,
answering machines, in the proportions of MIX). One campaign per mode of MODES, one after
the other (answering-machine detection on, at most CHANNELS_PER_AGENT calls per agent, no
retry), calls CONTACTS contacts of its own (--quick: QUICK_CONTACTS) until it finishes: the
dialer places calls as fast as the agents take them, the rate this stack sustains.

Per mode (``real_<mode>_…``): ``attempts_per_s``, the attempts over the run's span (first
attempt placed to last ended); ``limit_attempts_per_s``, the most any dialer could reach with
these calls and no more of them in progress than the mode allows (progressive: the agents;
predictive: the campaign's cap), by Little's law that bound over the mean length of an
attempt; ``ratio_to_limit``, the first over the second (the mean share of those channels kept
in a call; the last calls ring out alone at the end); ``abandon_rate``, abandoned calls over
the calls a person answered (answered + abandoned), machines excluded. ``real_attempts_per_s``
is the faster mode's rate, ``abandon_rate`` the worse mode's, beside ``abandon_limit`` (the
law's 3 %). ``double_calls``: INVITEs the far end received beyond one per attempt, for any
number (calls no attempt accounts for included).

The law's calling hours are met by the dialer's ``law_clock`` set inside the law's next
window (tests/e2e/campaign_world.py, ``legal_clock``): the bench runs at any hour.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.call_load import World, agents_phones, ok, populate, token, udp_port
from bench.stack import ami_config, asterisk_sandbox
from graam_pbx.app import Endpoints, Runtime, create_app
from graam_pbx.auth import service as auth_service
from graam_pbx.db import migrate
from graam_pbx.sandbox.asterisk import AsteriskSandbox
from graam_pbx.sandbox.ports import free_port
from graam_pbx.sandbox.postgres import EmbeddedPostgres, EmbeddedPostgresConfig
from graam_pbx.settings import Settings
from tests.e2e.campaign_world import (
    BUSY,
    MACHINE,
    NO_ANSWER,
    PERSON,
    automated_caller_number,
    contact_number,
    contacts_csv,
    far_end,
    invites_by_number,
    legal_clock,
)
from tests.unit.test_wav import make_wav

AGENTS = 40
CONTACTS = 400
QUICK_AGENTS = 10
QUICK_CONTACTS = 60
TALK_S = 1.0
MODES = ("progressive", "predictive")
# The campaign's cap, and the tenant's (its licences are its agents, three calls each: the
# default dialer_calls_per_licence).
CHANNELS_PER_AGENT = 3
# Of every 20 contacts: 14 people, 3 busy lines, 1 line nobody answers, 2 machines.
MIX = {PERSON: 14, BUSY: 3, NO_ANSWER: 1, MACHINE: 2}
FAR_END_IP = "127.0.0.81"
PASSWORD = "bench-call-load-password"  # noqa: S105 - the account bench.call_load.populate makes
RUN_TIMEOUT_S = 900.0
POLL_S = 0.5


def contact_kinds(contacts: int) -> dict[str, str]:
    """``contacts`` numbers (number -> kind) in the proportions of MIX, interleaved."""
    pattern = [kind for kind, count in MIX.items() for _ in range(count)]
    return {contact_number(kind): kind for kind in (pattern * contacts)[:contacts]}


async def created(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 201:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    body: dict[str, Any] = response.json()
    return body


@dataclass
class Provisioned:
    admin: dict[str, str]
    supervisor: dict[str, str]
    caller_id_number_id: int
    abandon_prompt_id: int


async def provision(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    far_end_port: int,
) -> Provisioned:
    """The caller ID, trunk, route and abandon message through the API."""
    async with sessions() as session, session.begin():
        await auth_service.create_operator(session, "op@operator.example", "Operator", PASSWORD)
    operator = await token(client, "op@operator.example", None)
    admin = await token(client, "admin@load.example", "load")
    supervisor = await token(client, "supervisor@load.example", "load")
    e164 = automated_caller_number()
    await ok(
        await client.post(
            "/api/v1/catalogue/numbers",
            headers=operator,
            json=[{"e164": e164, "monthly_price": "1.00", "currency": "EUR"}],
        )
    )
    number = await created(await client.post("/api/v1/numbers", headers=admin, json={"e164": e164}))
    trunk = await created(
        await client.post(
            "/api/v1/trunks",
            headers=operator,
            json={"name": "far-end", "host": FAR_END_IP, "port": far_end_port, "country": "FR"},
        )
    )
    await created(
        await client.post(
            "/api/v1/outbound-routes",
            headers=admin,
            json={
                "name": "campaigns",
                "trunk_id": trunk["id"],
                "caller_id_number_id": number["id"],
                "allowed_countries": ["FR"],
            },
        )
    )
    prompt = await created(
        await client.post(
            "/api/v1/prompts",
            headers=admin,
            data={"name": "abandon"},
            files={"file": ("abandon.wav", make_wav(seconds=0.5), "audio/wav")},
        )
    )
    return Provisioned(admin, supervisor, number["id"], prompt["id"])


async def new_campaign(
    client: httpx.AsyncClient, made: Provisioned, world: World, mode: str, kinds: dict[str, str]
) -> int:
    """A list of ``kinds``'s contacts imported from CSV and a campaign in ``mode`` over it."""
    contact_list = await created(
        await client.post(
            "/api/v1/contact-lists",
            headers=made.admin,
            json={"name": f"bench-{mode}", "default_region": "FR"},
        )
    )
    imported = await created(
        await client.post(
            f"/api/v1/contact-lists/{contact_list['id']}/imports",
            headers=made.admin,
            files={"file": ("contacts.csv", contacts_csv(kinds), "text/csv")},
        )
    )
    if imported["rows_added"] != len(kinds):
        raise RuntimeError(f"contacts not imported: {imported}")
    no_retry = {"delay_seconds": 60, "max": 0}
    campaign = await created(
        await client.post(
            "/api/v1/campaigns",
            headers=made.admin,
            json={
                "name": f"bench-{mode}",
                "list_id": contact_list["id"],
                "queue_id": world.queue_id,
                "caller_id_number_id": made.caller_id_number_id,
                "mode": mode,
                "audience": "businesses",
                "ring_seconds": 15,
                "max_channels": CHANNELS_PER_AGENT * len(world.agents),
                "amd_enabled": True,
                "machine_action": "hangup",
                "abandon_prompt_id": made.abandon_prompt_id,
                "retries": {outcome: no_retry for outcome in (BUSY, NO_ANSWER, MACHINE)},
            },
        )
    )
    campaign_id: int = campaign["id"]
    return campaign_id


async def finished(client: httpx.AsyncClient, campaign_id: int, headers: dict[str, str]) -> None:
    async with asyncio.timeout(RUN_TIMEOUT_S):
        while True:
            body = await ok(await client.get(f"/api/v1/campaigns/{campaign_id}", headers=headers))
            if body["status"] == "finished":
                return
            await asyncio.sleep(POLL_S)


async def figures(url: str, campaign_id: int) -> dict[str, Any]:
    """The campaign's attempts as the dialer recorded them."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS attempts, "
            "extract(epoch FROM max(ended_at) - min(placed_at)) AS span_s, "
            "avg(extract(epoch FROM ended_at - placed_at)) AS mean_s, "
            "count(*) FILTER (WHERE outcome = 'answered') AS answered, "
            "count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned, "
            "count(*) FILTER (WHERE outcome = 'machine') AS machines, "
            "count(*) FILTER (WHERE outcome = 'lost') AS lost "
            "FROM campaign_attempts WHERE campaign_id = $1",
            campaign_id,
        )
        numbers = await conn.fetch(
            "SELECT number, count(*) AS n FROM campaign_attempts WHERE campaign_id = $1 "
            "GROUP BY number",
            campaign_id,
        )
    finally:
        await conn.close()
    assert row is not None
    return {**dict(row), "by_number": Counter({r["number"]: int(r["n"]) for r in numbers})}


def summary(got: dict[str, Any], channels: int) -> list[tuple[str, float | int]]:
    """One campaign's figures, ``channels`` the calls its mode may have in progress (see the
    module's docstring)."""
    attempts = int(got["attempts"])
    span_s = float(got["span_s"] or 0)
    mean_s = float(got["mean_s"] or 0)
    live = int(got["answered"]) + int(got["abandoned"])
    rate = round(attempts / span_s, 2) if span_s else 0.0
    limit = round(channels / mean_s, 2) if mean_s else 0.0
    return [
        ("attempts", attempts),
        ("seconds", round(span_s, 1)),
        ("attempts_per_s", rate),
        ("limit_attempts_per_s", limit),
        ("ratio_to_limit", round(rate / limit, 2) if limit else 0.0),
        ("mean_attempt_s", round(mean_s, 2)),
        ("answered", int(got["answered"])),
        ("abandoned", int(got["abandoned"])),
        ("machines", int(got["machines"])),
        ("lost", int(got["lost"])),
        ("abandon_rate", round(int(got["abandoned"]) / live, 4) if live else 0.0),
    ]


async def agents_free(runtime: Runtime, world: World) -> None:
    """Until every agent of the queue is free again (Asterisk's queue status)."""
    queue = f"t{world.tenant_id}-q{world.queue_id}"
    async with asyncio.timeout(60):
        while True:
            if await queue_free_members_of(runtime, queue) >= len(world.agents):
                return
            await asyncio.sleep(POLL_S)


async def queue_free_members_of(runtime: Runtime, queue: str) -> int:
    events = await runtime.ami.action_list("QueueStatus", {"Queue": queue})
    return sum(
        1
        for event in events
        if event.name == "QueueMember" and event.get("Status") == "1" and event.get("Paused") == "0"
    )


async def real_run(quick: bool) -> dict[str, float | int]:
    """A campaign through a real Asterisk at the rate its agents sustain; its figures."""
    agents = QUICK_AGENTS if quick else AGENTS
    contacts = QUICK_CONTACTS if quick else CONTACTS
    work = Path(tempfile.mkdtemp(prefix="graam-bench-dialer-"))
    pg = EmbeddedPostgres(EmbeddedPostgresConfig(work / "pg", port=free_port()))
    sandbox: AsteriskSandbox | None = None
    await pg.start()
    try:
        admin_conn = await asyncpg.connect(pg.url())
        await admin_conn.execute("CREATE DATABASE bench")
        await admin_conn.close()
        url = pg.url("bench")
        await migrate(url)
        world = await populate(url, agents)
        sandbox = asterisk_sandbox(work / "asterisk", sip_port=udp_port())
        info = await sandbox.start()
        asterisk = f"127.0.0.1:{sandbox.config.sip_port}"
        settings = Settings(agi_port=free_port(), data_dir=work, billing_interval=86_400)
        endpoints = Endpoints(
            database_url=url,
            ami=ami_config(info),
            config_dir=info.config_dir,
            sounds_dir=info.sounds_dir,
            queue_log=sandbox.log_dir / "queue_log",
        )
        carrier = far_end(work, FAR_END_IP, RUN_TIMEOUT_S * len(MODES) + 120)
        app = create_app(settings, endpoints)
        runs: dict[str, dict[str, Any]] = {}
        async with app.router.lifespan_context(app):
            runtime: Runtime = app.state.runtime
            await runtime.ami.wait_connected(30)
            if runtime.applier is None or runtime.agents is None or runtime.dialer is None:
                raise RuntimeError("the control plane runs no applier, agent worker or dialer")
            runtime.dialer.law_clock = legal_clock()
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=60
            ) as client:
                made = await provision(client, app.state.sessions, carrier.port)
                runtime.applier.request({world.tenant_id})
                await runtime.applier.settled()
                await carrier.start()
                try:
                    async with agents_phones(work, asterisk, world.phones, TALK_S):
                        for user_id, _, _ in world.agents:
                            await ok(
                                await client.post(
                                    f"/api/v1/agents/{user_id}/session", headers=made.supervisor
                                )
                            )
                        await runtime.agents.settled()
                        for mode in MODES:
                            campaign_id = await new_campaign(
                                client, made, world, mode, contact_kinds(contacts)
                            )
                            await ok(
                                await client.post(
                                    f"/api/v1/campaigns/{campaign_id}/start",
                                    headers=made.supervisor,
                                )
                            )
                            await finished(client, campaign_id, made.supervisor)
                            runs[mode] = await figures(url, campaign_id)
                            # The agents' last calls end before the next campaign starts.
                            await agents_free(runtime, world)
                finally:
                    heard = await carrier.stop()
        invites = invites_by_number(heard.messages)
        placed: Counter[str] = sum((run["by_number"] for run in runs.values()), Counter())
        double_calls = sum(
            max(0, invites[number] - placed[number]) for number in set(invites) | set(placed)
        )
        result: dict[str, float | int] = {
            "real_agents": agents,
            "real_contacts_per_mode": contacts,
            "real_far_end_invites": sum(invites.values()),
            "double_calls": double_calls,
            "abandon_limit": 0.03,
        }
        for mode, got in runs.items():
            channels = agents if mode == "progressive" else CHANNELS_PER_AGENT * agents
            figures_of_mode = summary(got, channels)
            result.update({f"real_{mode}_{key}": value for key, value in figures_of_mode})
        # The headline figures: the faster mode's rate, the worse mode's abandon rate.
        result["real_attempts_per_s"] = max(
            float(result[f"real_{mode}_attempts_per_s"]) for mode in runs
        )
        result["abandon_rate"] = max(float(result[f"real_{mode}_abandon_rate"]) for mode in runs)
        return result
    finally:
        if sandbox is not None:
            await sandbox.stop()
        await pg.stop()
        shutil.rmtree(work, ignore_errors=True)
