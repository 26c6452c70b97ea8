"""The Recordings page in the browser: a supervisor finds a recording, the browser plays
the stored Ogg Opus and seeks in it (HTTP ranges), the play is audited; an agent of a tenant
that does not allow it is refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.async_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from graam_pbx.recordings import spool
from graam_pbx.recordings.models import Recording
from tests.conftest import RunningApp
from tests.e2e.web.agent_console import assert_forbidden
from tests.e2e.web.browser import SEEN_WITHIN_MS, assert_accessible, log_in, save_screenshot
from tests.factories import PASSWORD, TenantWorld, make_world
from tests.tones import tone_wav
from tests.waiting import until

Sessions = async_sessionmaker[AsyncSession]
SECONDS = 3


async def stored_tone(pbx: RunningApp, sessions: Sessions, world: TenantWorld, tmp: Path) -> int:
    """A three-second recording of a tone, stored as the collector stores one."""
    wav = tmp / "leg.wav"
    wav.write_bytes(tone_wav(440, SECONDS))
    data = spool.encode(wav, SECONDS * 16000, 8000)
    uniqueid = f"page-{uuid.uuid4().hex}"
    key = f"t{world.tenant_id}/2026/12/05/{uniqueid}.ogg"
    store = pbx.runtime.recordings
    assert store is not None
    store.put(key, data)
    recording = Recording(
        tenant_id=world.tenant_id,
        linkedid=uniqueid,
        uniqueid=uniqueid,
        direction="inbound",
        queue_id=None,
        agent_user_id=world.agent.user_id,
        party_number="+33612345678",
        started_at=datetime.now(UTC),
        duration_ms=SECONDS * 1000,
        size_bytes=len(data),
        sha256="0" * 64,
        media_type=spool.MEDIA_TYPE,
        storage_key=key,
    )
    async with sessions() as session, session.begin():
        session.add(recording)
    return recording.id


async def test_a_supervisor_plays_and_seeks_a_recording_in_the_browser(
    pbx: RunningApp,
    browser: Browser,
    console: str,
    client: httpx.AsyncClient,
    sessions: Sessions,
    tmp_path: Path,
) -> None:
    world = await make_world(client, sessions)
    recording_id = await stored_tone(pbx, sessions, world, tmp_path)
    context = await browser.new_context(locale="en-GB", viewport={"width": 1400, "height": 900})
    try:
        page = await context.new_page()
        await log_in(page, console, world.slug, world.supervisor.email, PASSWORD)
        await page.get_by_role("link", name="Recordings").click()
        row = page.locator(f'#recordings tr[data-recording="{recording_id}"]')
        await expect(row).to_contain_text("+33612345678", timeout=SEEN_WITHIN_MS)
        await expect(row).to_contain_text("Inbound")
        await assert_accessible(page)
        # The browser decodes the stored file and seeks in it (a range request).
        played = await row.locator("audio").evaluate(
            """async (audio) => {
                audio.muted = true;
                audio.preload = "auto";
                const loaded = new Promise((done) =>
                    audio.addEventListener("loadedmetadata", done, { once: true }));
                audio.load();
                await loaded;
                const seeked = new Promise((done) =>
                    audio.addEventListener("seeked", done, { once: true }));
                audio.currentTime = 2;
                await seeked;
                return [audio.duration, audio.currentTime, audio.error];
            }"""
        )
        duration, position, error = played
        assert error is None
        assert abs(duration - SECONDS) < 0.2, duration
        assert position >= 1.9
        await save_screenshot(page, "recordings")

        async def audited() -> bool:
            async with sessions() as session:
                found = await session.scalar(
                    select(AuditEntry.id).where(
                        AuditEntry.tenant_id == world.tenant_id,
                        AuditEntry.action == "played",
                        AuditEntry.object_id == str(recording_id),
                    )
                )
                return found is not None

        await until(audited, "the play in the audit log")
    finally:
        await context.close()

    # An agent of this tenant (which does not let agents play recordings) is refused.
    agent_context = await browser.new_context(locale="en-GB")
    try:
        agent = await agent_context.new_page()
        await log_in(agent, console, world.slug, world.agent.email, PASSWORD)
        await assert_forbidden(agent, f"{console}/recordings")
    finally:
        await agent_context.close()
