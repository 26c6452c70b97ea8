"""Preview calls asked in an API process and placed by the active worker's dialer.

An API process and a worker process (``create_app`` with their roles, each with its own
engine, AMI connection and LISTEN connection; nothing shared but Postgres and Asterisk) run
beside the session's control plane, on its database: the session's app provisions the tenant,
its dialplan and the agent's login. The agent reserves a contact and clicks "dial" on the API
process; the worker's dialer rings the agent's phone, then the contact: one attempt, one
INVITE at the far end. A click whose first answer is lost (the worker that placed it died
before answering) is answered by the next worker with the same attempt, never a second call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from graam_pbx.app import Runtime
from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.auth.service import hash_password
from graam_pbx.campaigns.placing import CallRefused
from graam_pbx.campaigns.remote_preview import PreviewRequests, RemoteDialer
from graam_pbx.campaigns.worker import DialerUnavailable
from graam_pbx.cluster import signals
from graam_pbx.db import plain_url
from graam_pbx.sandbox.postgres import EmbeddedPostgres
from graam_pbx.settings import ProcessRole
from tests.conftest import Asterisk, RunningApp
from tests.e2e.campaign_world import judge_every_dialer_at_legal_hours
from tests.e2e.sipp import SippPool
from tests.e2e.test_dialer import (
    DialerTenant,
    Sessions,
    attempts_of,
    contact_number,
    dialer_tenant,
    invites_by_number,
    logged_in_agent,
    new_campaign,
)
from tests.factories import PASSWORD, login
from tests.role_processes import is_active
from tests.role_processes import role_process as shared_role_process
from tests.waiting import until

CARRIER_IP = "127.0.0.151"  # this module's far end; no other test's
LEASE_INTERVAL = 0.2
TAKEOVER_TIMEOUT = 30.0  # a wait on a loaded machine, never a measured duration


@contextlib.asynccontextmanager
async def role_process(
    role: ProcessRole, database_url: str, asterisk: Asterisk, workdir: Path
) -> AsyncIterator[RunningApp]:
    """A process of ``role`` on the session's database (its secret key: the same data dir)."""
    async with shared_role_process(
        role,
        database_url,
        asterisk,
        workdir,
        name="preview",
        lease_interval=LEASE_INTERVAL,
        dialer_node=f"preview-{role.value}",  # the session's dialer keeps its own campaigns
    ) as process:
        yield process


async def agent_headers(
    client: httpx.AsyncClient, sessions: Sessions, setup: DialerTenant
) -> dict[str, str]:
    """The agent's token, from the API process (the test knows no provisioned password)."""
    async with sessions() as session, session.begin():
        email = await session.scalar(
            text("UPDATE users SET password_hash = :hash WHERE id = :id RETURNING email"),
            {"hash": await hash_password(PASSWORD), "id": setup.agent.user_id},
        )
    return {"Authorization": f"Bearer {await login(client, str(email), setup.world.slug)}"}


@pytest.fixture
def pbx_database(postgres: EmbeddedPostgres) -> str:
    return postgres.url("pbx")


@dataclass
class PreviewCampaign:
    setup: DialerTenant
    person: str  # the one contact's number: a person who answers
    campaign_id: int
    contact_ids: dict[str, int]


@pytest.fixture
async def preview(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> PreviewCampaign:
    """A preview campaign of one contact (a person) of a tenant whose agent is logged in and
    whose outbound route leads to this module's far end."""
    setup = await dialer_tenant(
        pbx, client, sessions, applier, sipp, tmp_path, carrier_ip=CARRIER_IP
    )
    await logged_in_agent(pbx, client, setup, asterisk, sipp, tmp_path)
    person = contact_number("person")
    campaign_id, contact_ids = await new_campaign(sessions, setup, [person], mode="preview")
    return PreviewCampaign(setup, person, campaign_id, contact_ids)


async def test_a_click_in_an_api_process_places_one_preview_call_through_the_worker(
    preview: PreviewCampaign,
    sessions: Sessions,
    asterisk: Asterisk,
    tmp_path: Path,
    pbx_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup, person = preview.setup, preview.person
    campaign_id, contact_ids = preview.campaign_id, preview.contact_ids
    judge_every_dialer_at_legal_hours(monkeypatch)
    async with (
        role_process(ProcessRole.API, pbx_database, asterisk, tmp_path / "api") as api,
        role_process(ProcessRole.WORKER, pbx_database, asterisk, tmp_path / "worker") as worker,
    ):
        assert api.runtime.dialer is None and api.runtime.remote_dialer is not None
        await until(lambda: is_active(worker.client), "the worker active", timeout=TAKEOVER_TIMEOUT)
        headers = await agent_headers(api.client, sessions, setup)
        base = f"/api/v1/campaigns/{campaign_id}/preview"
        reserved = await api.client.post(f"{base}/next", headers=headers)
        assert reserved.status_code == 200, reserved.text
        assert reserved.json()["contact"]["id"] == contact_ids[person]

        dialed = await api.client.post(f"{base}/{contact_ids[person]}/dial", headers=headers)
        assert dialed.status_code == 202, dialed.text
        attempt_id = dialed.json()["attempt_id"]

        async def ended() -> bool:
            return all(a.ended_at is not None for a in await attempts_of(sessions, campaign_id))

        await until(ended, "the preview call's end", timeout=60)
        (attempt,) = await attempts_of(sessions, campaign_id)
        assert attempt.id == attempt_id
        assert (attempt.outcome, attempt.mode) == ("answered", "preview")
        assert attempt.agent_user_id == setup.agent.user_id
        assert worker.runtime.preview_requests is not None
        assert worker.runtime.preview_requests.answered == 1  # placed by the worker's dialer

        # Clicked again: the contact is no longer reserved, as in a process with a dialer.
        again = await api.client.post(f"{base}/{contact_ids[person]}/dial", headers=headers)
        assert again.status_code == 409, again.text
        assert len(await attempts_of(sessions, campaign_id)) == 1
    far_end = await setup.carrier.stop()
    assert invites_by_number(far_end) == {person: 1}, far_end.describe()


class DiesBeforeAnswering(PreviewRequests):
    """A worker that places the call, then dies before its answer is sent."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.placed = asyncio.Event()

    async def _answer(
        self, channel_id: str, tenant_id: int, campaign_id: int, contact_id: int, agent_id: int
    ) -> None:
        await self._place(channel_id, tenant_id, campaign_id, contact_id, agent_id)
        self._started = False  # dead: it hears nothing more
        self.placed.set()


async def test_a_click_whose_worker_died_before_answering_is_answered_by_the_next_not_placed_again(
    preview: PreviewCampaign,
    sessions: Sessions,
    asterisk: Asterisk,
    tmp_path: Path,
    pbx_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup, person = preview.setup, preview.person
    campaign_id, contact_ids = preview.campaign_id, preview.contact_ids
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE campaign_contacts SET reserved_by = :agent WHERE campaign_id = :c"),
            {"agent": setup.agent.user_id, "c": campaign_id},
        )
    judge_every_dialer_at_legal_hours(monkeypatch)
    async with role_process(
        ProcessRole.WORKER, pbx_database, asterisk, tmp_path / "worker"
    ) as worker:
        await until(lambda: is_active(worker.client), "the worker active", timeout=TAKEOVER_TIMEOUT)
        runtime: Runtime = worker.runtime
        successor = runtime.preview_requests
        assert successor is not None and runtime.dialer is not None
        # The first worker to hear the click places it and dies before answering; the next
        # one hears the click asked again (the same request) only once it is active.
        dying = DiesBeforeAnswering(worker.app.state.sessions, runtime.dialer)
        await successor.stop()
        await dying.start()
        listening = await asyncpg.connect(plain_url(pbx_database))
        await listening.add_listener(
            signals.PREVIEW_CHANNEL, lambda _c, _p, _ch, payload: dying.heard(payload)
        )
        remote = RemoteDialer(plain_url(pbx_database), resend=0.5)
        click = asyncio.create_task(
            remote.dial_preview(
                setup.world.tenant_id, campaign_id, contact_ids[person], setup.agent.user_id
            )
        )
        async with asyncio.timeout(30):
            await dying.placed.wait()
        assert not click.done()
        await listening.close()
        await successor.start()
        async with asyncio.timeout(30):
            attempt_id = await click

        async def ended() -> bool:
            return all(a.ended_at is not None for a in await attempts_of(sessions, campaign_id))

        await until(ended, "the preview call's end", timeout=60)
        # Asked again through the worker: its refusal comes back as the same domain error.
        with pytest.raises(CallRefused):
            await remote.dial_preview(
                setup.world.tenant_id, campaign_id, contact_ids[person], setup.agent.user_id
            )
    (attempt,) = await attempts_of(sessions, campaign_id)
    assert attempt.id == attempt_id and attempt.outcome == "answered"
    assert successor.answered >= 1
    far_end = await setup.carrier.stop()
    assert invites_by_number(far_end) == {person: 1}, far_end.describe()


async def test_with_no_active_worker_a_click_is_answered_dialer_unavailable(
    pbx: RunningApp, pbx_database: str
) -> None:
    """The session's control plane (role all) holds no lease: nothing would hear the click."""
    with pytest.raises(DialerUnavailable):
        await RemoteDialer(plain_url(pbx_database)).dial_preview(1, 1, 1, 1)
