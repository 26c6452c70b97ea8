"""API changes reach the real Asterisk by themselves: generated, written, reloaded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.asterisk.applier import ConfigApplier
from tests.conftest import Asterisk, RunningApp
from tests.factories import TenantWorld, make_world
from tests.unit.test_wav import make_wav
from tests.waiting import until

Sessions = async_sessionmaker[AsyncSession]


async def cli(pbx: RunningApp, command: str) -> str:
    return await pbx.runtime.ami.command(command)


async def agent_device(
    client: httpx.AsyncClient, world: TenantWorld, extension: str = "201"
) -> dict[str, str]:
    response = await client.post(
        "/api/v1/devices",
        headers=world.admin.headers,
        json={"user_id": world.agent.user_id, "name": f"desk{extension}", "extension": extension},
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def test_a_new_device_is_a_pjsip_endpoint_and_an_extension(
    pbx: RunningApp, client: httpx.AsyncClient, sessions: Sessions, applier: ConfigApplier
) -> None:
    world = await make_world(client, sessions)
    device = await agent_device(client, world)
    await applier.settled()

    async def endpoint_loaded() -> bool:
        return "tenantid" in await cli(pbx, f"pjsip show endpoint {device['sip_username']}")

    await until(endpoint_loaded, "endpoint loaded", 10)
    shown = await cli(pbx, f"pjsip show endpoint {device['sip_username']}")
    assert f"t{world.tenant_id}" in shown
    dialplan = await cli(pbx, f"dialplan show 201@t{world.tenant_id}-internal")
    assert f"t{world.tenant_id}-dest" in dialplan


async def test_a_burst_of_changes_makes_one_pass(
    pbx: RunningApp, client: httpx.AsyncClient, sessions: Sessions, applier: ConfigApplier
) -> None:
    world = await make_world(client, sessions)
    await applier.settled()
    before = applier.applied
    for _ in range(10):
        applier.request({world.tenant_id})
    await applier.settled()
    assert applier.applied == before + 1


async def test_an_ivr_digit_changed_through_the_api_is_live(
    pbx: RunningApp, client: httpx.AsyncClient, sessions: Sessions, applier: ConfigApplier
) -> None:
    world = await make_world(client, sessions)
    admin = world.admin.headers
    queue = (await client.post("/api/v1/queues", headers=admin, json={"name": "sales"})).json()
    menu = await client.post(
        "/api/v1/ivrs",
        headers=admin,
        json={"name": "main", "options": {"1": {"type": "queue", "id": queue["id"]}}},
    )
    assert menu.status_code == 201, menu.text
    context = f"t{world.tenant_id}-ivr-{menu.json()['id']}"

    async def has_digit(digit: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return f"'{digit}' =>" in await cli(pbx, f"dialplan show {context}")

        return check

    await until(await has_digit("1"), "menu digit 1", 10)
    changed = await client.patch(
        f"/api/v1/ivrs/{menu.json()['id']}",
        headers=admin,
        json={"options": {"2": {"type": "queue", "id": queue["id"]}}},
    )
    assert changed.status_code == 200, changed.text
    await until(await has_digit("2"), "menu digit 2", 10)
    assert "'1' =>" not in await cli(pbx, f"dialplan show {context}")
    queues = await cli(pbx, f"queue show t{world.tenant_id}-q{queue['id']}")
    assert "strategy" in queues


async def test_suspension_refuses_outbound_and_termination_removes_everything(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
) -> None:
    world = await make_world(client, sessions)
    device = await agent_device(client, world)
    tenant_url = f"/api/v1/tenants/{world.tenant_id}"
    outbound = f"t{world.tenant_id}-outbound"
    suspended = await client.patch(
        tenant_url, headers=world.operator.headers, json={"status": "suspended"}
    )
    assert suspended.status_code == 200, suspended.text

    async def refuses() -> bool:
        return "suspended" in await cli(pbx, f"dialplan show {outbound}")

    await until(refuses, "refusal", 10)
    terminated = await client.patch(
        tenant_url, headers=world.operator.headers, json={"status": "terminated"}
    )
    assert terminated.status_code == 200, terminated.text
    tenant_dir = asterisk.info.config_dir / "tenants" / f"t{world.tenant_id}"

    async def gone() -> bool:
        shown = await cli(pbx, f"pjsip show endpoint {device['sip_username']}")
        return not tenant_dir.exists() and "Unable to find object" in shown

    await until(gone, "removal from Asterisk", 10)
    assert "There is no existence" in await cli(pbx, f"dialplan show {outbound}")


async def test_an_uploaded_prompt_becomes_a_file_asterisk_plays(
    pbx: RunningApp, client: httpx.AsyncClient, sessions: Sessions, asterisk: Asterisk
) -> None:
    world = await make_world(client, sessions)
    prompt = await client.post(
        "/api/v1/prompts",
        headers=world.admin.headers,
        data={"name": "welcome"},
        files={"file": ("welcome.wav", make_wav(seconds=0.5), "audio/wav")},
    )
    assert prompt.status_code == 201, prompt.text
    directory: Path = asterisk.info.sounds_dir / f"t{world.tenant_id}"

    async def written() -> bool:
        return any(directory.glob(f"p{prompt.json()['id']}-*.wav"))

    await until(written, "file written", 10)
    deleted = await client.delete(
        f"/api/v1/prompts/{prompt.json()['id']}", headers=world.admin.headers
    )
    assert deleted.status_code == 204

    async def removed() -> bool:
        return not any(directory.glob("*.wav"))

    await until(removed, "file removed", 10)


async def test_generated_files_load_without_asterisk_errors(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
) -> None:
    console = asterisk.sandbox.console_log
    start = console.stat().st_size
    world = await make_world(client, sessions)
    await agent_device(client, world, "210")
    admin = world.admin.headers
    box = await client.post(
        "/api/v1/voicemail-boxes",
        headers=admin,
        json={"number": "800", "name": "Sales; after hours", "pin": "1234"},
    )
    assert box.status_code == 201, box.text
    applier.request(None)
    await applier.settled()
    with console.open("rb") as log:
        log.seek(start)
        new = log.read().decode(errors="replace")
    errors = [line for line in new.splitlines() if "ERROR" in line or "WARNING" in line]
    assert not [line for line in errors if "graam" in line or "config" in line], errors
