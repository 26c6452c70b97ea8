"""A tenant ready to run an outbound campaign through the real Asterisk, made through the API
where it has a route for it.

Its caller ID is a number of ARCEP's range for automated calling (+33162…); its outbound route
leaves through a trunk to one sipp far end that plays every kind of called party, chosen by
the number dialled (scenarios/campaign_far_end.xml): +3361… a person, +3362… busy, +3363… no
answer, +3364… an answering machine. Its queue's agents are logged in through the API from
devices registered by sipp, one sipp answering them all (each call: a second of talk, then
the agent hangs up). The abandon message is a prompt uploaded through the API, and the
contacts a list imported from CSV.

The law forbids calls outside Monday-Friday 10:00-13:00 and 14:00-20:00 in the contact's time
zone and on public holidays; these tests run at any hour. Their seam is the dialer's
``law_clock`` (graam_pbx/campaigns/worker.py), the instant the law judges each call at:
``legal_clock`` starts it one minute into the law's next calling window for a contact in Paris
and runs it at the pace of the real clock, so the whole campaign is judged inside the window.
Everything else (attempts, retries, events) keeps the real time.
"""

from __future__ import annotations

import itertools
import secrets
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import phonenumbers
import pytest

from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.campaigns.law import is_public_holiday, law_for_region
from graam_pbx.campaigns.worker import DialerWorker
from tests.campaign_rows import held_number
from tests.conftest import Asterisk, RunningApp
from tests.e2e.rtp_pcap import write_voices
from tests.e2e.sipp import SCENARIOS, Sipp, SippPool
from tests.e2e.test_agent_login import (
    Phone,
    Sessions,
    SippBatch,
    configured,
    credentials,
    new_tenant,
    raw_connection,
    session_url,
)
from tests.e2e.test_calls import created, new_trunk
from tests.factories import TenantWorld, unique
from tests.unit.test_wav import make_wav
from tests.waiting import until

FAR_END_SCENARIO = "campaign_far_end.xml"
AGENT_SCENARIO = "queue_agent_answers.xml"
PHONES_IP = "127.0.0.1"

PERSON = "person"
BUSY = "busy"
NO_ANSWER = "no_answer"
MACHINE = "machine"
# The digit after +336 the far end reads to play each kind of called party.
KIND_DIGITS = {PERSON: "1", BUSY: "2", NO_ANSWER: "3", MACHINE: "4"}
# ARCEP's ranges reserved for automated calling systems start +33162, +33163, …
ARCEP_AUTOMATED_PREFIX = "+33162"

_serial = itertools.count(secrets.randbelow(1_000_000))

PARIS = ZoneInfo("Europe/Paris")


def legal_clock(now: datetime | None = None) -> Callable[[], datetime]:
    """A clock for the dialer's law: one minute into France's next calling window for Paris
    that starts after ``now`` (a working day, no public holiday), running from there at the
    real clock's pace; a campaign of minutes stays hours inside the window."""
    now = now or datetime.now(UTC)
    law = law_for_region("FR")
    day = now.astimezone(PARIS).date()
    while True:
        if not is_public_holiday("FR", day):
            for window in sorted(law.windows, key=lambda w: w.start):
                if window.weekday != day.weekday():
                    continue
                opening = datetime.combine(day, window.start, PARIS) + timedelta(minutes=1)
                if opening > now:
                    offset = opening - now
                    return lambda: datetime.now(UTC) + offset
        day += timedelta(days=1)


def judge_at_legal_hours(monkeypatch: pytest.MonkeyPatch, dialer: DialerWorker) -> None:
    """Test-only: ``dialer``'s law judges calls by ``legal_clock`` (undone by ``monkeypatch``)."""
    monkeypatch.setattr(dialer, "law_clock", legal_clock())


def judge_every_dialer_at_legal_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test-only: every dialer this process starts from now on judges by ``legal_clock``
    (a control plane whose dialer starts with its lifespan)."""
    start = DialerWorker.start

    async def start_at_legal_hours(self: DialerWorker) -> None:
        self.law_clock = legal_clock()
        await start(self)

    monkeypatch.setattr(DialerWorker, "start", start_at_legal_hours)


def _valid(e164: str) -> bool:
    return phonenumbers.is_valid_number(phonenumbers.parse(e164))


def contact_number(kind: str) -> str:
    """A French mobile number the far end answers as ``kind``, no other test's."""
    while True:
        e164 = f"+336{KIND_DIGITS[kind]}{next(_serial) % 10_000_000:07d}"
        if _valid(e164):
            return e164


def automated_caller_number() -> str:
    """A number of ARCEP's range for automated calling systems, no other test's."""
    while True:
        e164 = f"{ARCEP_AUTOMATED_PREFIX}{next(_serial) % 1_000_000:06d}"
        if _valid(e164):
            return e164


def far_end(workdir: Path, ip: str, timeout: float) -> Sipp:
    """The carrier's far end (not started): the scenario beside the voices it plays."""
    directory = workdir / unique("far-end")
    write_voices(directory)
    scenario = directory / FAR_END_SCENARIO
    shutil.copyfile(SCENARIOS / FAR_END_SCENARIO, scenario)
    # An absolute path: SCENARIOS / it is itself.
    return Sipp(str(scenario), workdir=workdir, ip=ip, timeout=timeout)


@dataclass
class CampaignWorld:
    world: TenantWorld
    queue_id: int
    agents: list[Phone]
    caller_number_id: int
    caller_number: str
    abandon_prompt_id: int
    list_id: int
    trunk_ip: str
    far_end: Sipp
    kinds: dict[str, str] = field(default_factory=dict)  # number -> kind

    def numbers(self, kind: str) -> list[str]:
        return [number for number, each in self.kinds.items() if each == kind]

    def campaign(self, **overrides: Any) -> dict[str, Any]:
        """A progressive campaign's body over the list, the queue and the caller ID."""
        return {
            "name": unique("campaign"),
            "list_id": self.list_id,
            "queue_id": self.queue_id,
            "caller_id_number_id": self.caller_number_id,
            "mode": "progressive",
            "audience": "businesses",
            "ring_seconds": 15,
            "max_channels": len(self.agents),
            "amd_enabled": True,
            "machine_action": "hangup",
            "abandon_prompt_id": self.abandon_prompt_id,
            **overrides,
        }


def interleaved(contacts: dict[str, int]) -> list[str]:
    """Kinds in turn (a person, a busy line, …) until each has its count: the list's order,
    so every kind of call is in progress from the campaign's first calls."""
    left = dict(contacts)
    order: list[str] = []
    while any(left.values()):
        for kind in left:
            if left[kind]:
                order.append(kind)
                left[kind] -= 1
    return order


def contacts_csv(kinds: dict[str, str]) -> bytes:
    """The list's CSV: a header row, then each number with a name saying what it is."""
    rows = ["number;name;kind"]
    rows += [
        f"{number};{kind.title()} {index};{kind}"
        for index, (number, kind) in enumerate(kinds.items())
    ]
    return ("\n".join(rows) + "\n").encode()


async def agents_answering(
    pbx: RunningApp,
    asterisk: Asterisk,
    sipp: SippPool,
    workdir: Path,
    agents: list[Phone],
    timeout: float,
) -> Sipp:
    """The agents' devices registered from one port, where one sipp then answers them all."""
    rows: list[tuple[str, ...]] = list(credentials(agents))
    batch = SippBatch(workdir, f"127.0.0.1:{asterisk.sip_port}", "agent_register.xml", rows)
    code, logged = await batch.run()
    assert code == 0, logged
    phones = Sipp(AGENT_SCENARIO, workdir=workdir, ip=PHONES_IP, port=batch.port, timeout=timeout)
    sipp.started.append(phones)
    return await phones.start()


async def queue_free_members(pbx: RunningApp, queue: str) -> int:
    """Members of the queue Asterisk holds free to ring (device state NOT_INUSE, unpaused)."""
    events = await pbx.runtime.ami.action_list("QueueStatus", {"Queue": queue})
    return sum(
        1
        for event in events
        if event.name == "QueueMember" and event.get("Status") == "1" and event.get("Paused") == "0"
    )


async def campaign_world(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    workdir: Path,
    *,
    trunk_ip: str,
    agents: int,
    contacts: dict[str, int],
    timeout: float = 600,
) -> CampaignWorld:
    """A tenant with ``agents`` logged-in agents answering, and a list of ``contacts`` (how
    many of each kind); the far end started, everything live in Asterisk. Sipp processes end
    after ``timeout`` seconds at most."""
    world, made = await new_tenant(pbx, client, sessions, licences=agents, agents=agents)
    conn = await raw_connection(pbx)
    try:
        # One agent rung per call (ringall would ring every free agent for each call).
        await conn.execute(
            "UPDATE queues SET strategy = 'leastrecent', wrapup_time = 0 WHERE id = $1",
            made.queue_id,
        )
    finally:
        await conn.close()

    caller_number = automated_caller_number()
    caller_id = await held_number(client, world, caller_number)
    carrier = far_end(workdir, trunk_ip, timeout)
    sipp.started.append(carrier)
    trunk = await new_trunk(client, world, trunk_ip, carrier.port)
    await created(
        await client.post(
            "/api/v1/outbound-routes",
            headers=world.admin.headers,
            json={
                "name": "campaigns",
                "trunk_id": trunk["id"],
                "caller_id_number_id": caller_id,
                "allowed_countries": ["FR"],
            },
        )
    )
    prompt = await created(
        await client.post(
            "/api/v1/prompts",
            headers=world.admin.headers,
            data={"name": "abandon"},
            files={"file": ("abandon.wav", make_wav(seconds=0.5), "audio/wav")},
        )
    )
    contact_list = await created(
        await client.post(
            "/api/v1/contact-lists",
            headers=world.admin.headers,
            json={"name": unique("list"), "default_region": "FR"},
        )
    )
    kinds = {contact_number(kind): kind for kind in interleaved(contacts)}
    imported = await created(
        await client.post(
            f"/api/v1/contact-lists/{contact_list['id']}/imports",
            headers=world.admin.headers,
            files={"file": ("contacts.csv", contacts_csv(kinds), "text/csv")},
        )
    )
    assert imported["rows_added"] == len(kinds) and imported["rows_refused"] == 0, imported
    await configured(applier, {world.tenant_id})

    await carrier.start()
    await agents_answering(pbx, asterisk, sipp, workdir, made.agents, timeout)
    for agent in made.agents:
        logged_in = await client.post(session_url(agent.user_id), headers=world.supervisor.headers)
        assert logged_in.status_code == 201, logged_in.text
    worker = pbx.runtime.agents
    assert worker is not None
    await worker.settled()
    queue = f"t{world.tenant_id}-q{made.queue_id}"

    async def all_free() -> bool:
        return await queue_free_members(pbx, queue) == agents

    await until(all_free, f"{agents} free members in {queue}", timeout=30)
    return CampaignWorld(
        world=world,
        queue_id=made.queue_id,
        agents=made.agents,
        caller_number_id=caller_id,
        caller_number=caller_number,
        abandon_prompt_id=prompt["id"],
        list_id=contact_list["id"],
        trunk_ip=trunk_ip,
        far_end=carrier,
        kinds=kinds,
    )


def invites_by_number(messages: str) -> Counter[str]:
    """The INVITEs a far end received, by the number dialled: each call once (its Call-ID),
    whatever its retransmissions."""
    calls: dict[str, str] = {}
    for block in messages.split("message received")[1:]:
        text = block.split("\n\n", 1)[-1]
        if not text.startswith("INVITE sip:"):
            continue
        number = text.removeprefix("INVITE sip:").split("@", 1)[0]
        for line in text.splitlines():
            if line.lower().startswith("call-id:"):
                calls[line.split(":", 1)[1].strip()] = number
                break
    return Counter(calls.values())
