"""A control plane killed (``kill -9``) in the middle of a campaign and started again never
calls anyone twice for one attempt.

The dialer runs in a control plane of its own process (tests/e2e/control_plane.py: the
session's Asterisk, the test's database), the session's own dialer stopped meanwhile. The
process is killed while calls are in progress (numbers nobody answers ring for 30 s), then
started again; the campaign finishes. The far end's message log says how many calls each
number got: never more than its attempts, and at least one per attempt that was not lost; and
the attempts open at the kill all ended, lost or with how their call really ended.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, literal_column, select

from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.campaigns.models import CampaignAttempt
from graam_pbx.db import plain_url
from tests.conftest import Asterisk, RunningApp
from tests.e2e.agent_tenant import retire
from tests.e2e.campaign_world import (
    BUSY,
    MACHINE,
    NO_ANSWER,
    PERSON,
    campaign_world,
    invites_by_number,
)
from tests.e2e.control_plane import ControlPlane, ControlPlaneConfig
from tests.e2e.sipp import SippPool
from tests.e2e.test_agent_login import Sessions
from tests.e2e.test_campaigns import attempts_of, describe, wait_finished
from tests.waiting import until

FAR_END_IP = "127.0.0.62"  # no other test's trunk uses it
AGENTS = 4
CONTACTS = {PERSON: 8, BUSY: 2, NO_ANSWER: 6, MACHINE: 2}
NO_RETRY = {"delay_seconds": 60, "max": 0}
# Twice the law's least: the call placed just before the kill still rings once the new process
# (Python's start, AMI login, its first reconciliation) is up, even on a loaded machine.
RING_SECONDS = 30
RETRIES = {"busy": NO_RETRY, "no_answer": NO_RETRY, "machine": NO_RETRY, "failed": NO_RETRY}
# How each kind of call really ends.
REAL_END = {
    PERSON: {"answered"},
    BUSY: {"busy"},
    NO_ANSWER: {"no_answer"},
    MACHINE: {"machine"},
}


async def open_attempts(sessions: Sessions, campaign_id: int) -> list[int]:
    async with sessions() as session:
        rows = await session.scalars(
            select(CampaignAttempt.id).where(
                CampaignAttempt.campaign_id == campaign_id, CampaignAttempt.ended_at.is_(None)
            )
        )
        return list(rows)


async def fresh_attempts(sessions: Sessions, campaign_id: int, numbers: list[str]) -> int:
    """Open attempts to ``numbers`` placed in the last 3 seconds (Postgres's clock)."""
    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).where(
                CampaignAttempt.campaign_id == campaign_id,
                CampaignAttempt.ended_at.is_(None),
                CampaignAttempt.number.in_(numbers),
                CampaignAttempt.placed_at > literal_column("now() - interval '3 seconds'"),
            )
        )
        return int(count or 0)


async def ended_attempts(sessions: Sessions, campaign_id: int) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).where(
                CampaignAttempt.campaign_id == campaign_id,
                CampaignAttempt.ended_at.is_not(None),
            )
        )
        return int(count or 0)


async def test_a_control_plane_killed_mid_campaign_never_calls_anyone_twice_for_one_attempt(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    cw = await campaign_world(
        pbx,
        client,
        sessions,
        applier,
        asterisk,
        sipp,
        tmp_path,
        trunk_ip=FAR_END_IP,
        agents=AGENTS,
        contacts=CONTACTS,
    )
    dialer = pbx.runtime.dialer
    assert dialer is not None, "the session's control plane runs no dialer"
    plane = ControlPlane(
        tmp_path / "control-plane",
        ControlPlaneConfig(
            database_url=plain_url(pbx.runtime.engine.url.render_as_string(hide_password=False)),
            ami=dataclasses.asdict(asterisk.ami_config()),
            state_dir=str(tmp_path / "control-plane-state"),
            legal_hours=True,
        ),
    )
    await dialer.stop()
    try:
        await plane.start()
        made = await client.post(
            "/api/v1/campaigns",
            headers=cw.world.admin.headers,
            json=cw.campaign(retries=RETRIES, ring_seconds=RING_SECONDS),
        )
        assert made.status_code == 201, made.text
        campaign: dict[str, Any] = made.json()
        started = await client.post(
            f"/api/v1/campaigns/{campaign['id']}/start", headers=cw.world.supervisor.headers
        )
        assert started.status_code == 200, started.text

        # Some calls over already, and one just placed to a number that rings for 30 s: it is
        # still ringing when the new process looks for it.
        ringing = cw.numbers(NO_ANSWER)

        async def in_the_middle() -> bool:
            return (
                await ended_attempts(sessions, campaign["id"]) >= 1
                and await fresh_attempts(sessions, campaign["id"], ringing) >= 1
            )

        await until(in_the_middle, "a call ringing after a first ended", timeout=60)
        await plane.kill()
        open_at_kill = set(await open_attempts(sessions, campaign["id"]))
        assert open_at_kill, "no call in progress at the kill"

        await plane.start()
        try:
            await wait_finished(client, sessions, cw, campaign["id"])
        except AssertionError as err:
            raise AssertionError(f"{err}\n--- control plane\n{plane.log()}") from None
        attempts = await attempts_of(sessions, campaign["id"])
        far_end = await cw.far_end.stop()

        # Every attempt ended as its call really did; those open at the kill may be lost.
        for attempt in attempts:
            real = REAL_END[cw.kinds[attempt.number]]
            if attempt.id in open_at_kill:
                real = real | {"lost", "abandoned"}
            assert attempt.ended_at is not None and attempt.outcome in real, describe([attempt])
        # The call still ringing at the kill was followed to its real end by the new process.
        tracked = [
            a
            for a in attempts
            if a.id in open_at_kill and a.number in ringing and a.outcome != "lost"
        ]
        assert tracked, describe([a for a in attempts if a.id in open_at_kill])

        # No attempt placed twice: per number, at most one call per attempt, and one for
        # each attempt that was not lost (a lost one may never have reached Asterisk).
        invites = invites_by_number(far_end.messages)
        placed = Counter(a.number for a in attempts)
        certain = Counter(a.number for a in attempts if a.outcome != "lost")
        wrong = {
            number: (invites[number], certain[number], placed[number])
            for number in set(placed) | set(invites)
            if not certain[number] <= invites[number] <= placed[number]
        }
        assert not wrong, f"{wrong}\n{describe(attempts)}\n{far_end.describe()}"
        # Every contact was called, and none more often than the retries allow (none).
        assert set(placed) == set(cw.kinds), describe(attempts)
        assert all(count == 1 for count in certain.values()), describe(attempts)
    finally:
        await plane.stop()
        await dialer.start()
        await retire(pbx, applier, cw.world.tenant_id)
