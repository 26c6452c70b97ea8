"""Every change the API accepted becomes live in Asterisk, or the status says it has not.

Reloads are made to overlap for real: a second AMI connection keeps sending
``module reload res_pjsip.so`` while the applier works, so Asterisk answers some of the
applier's reloads "A module reload request is already in progress" (it did so 35 times in
23 minutes of ordinary admin work). Whether a change is live is asked of Asterisk itself
(sipp REGISTERs, ``pjsip show endpoints``, ``dialplan show``, ``voicemail show users``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx import metrics
from graam_pbx.ami import AmiSupervisor, EventBus
from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.asterisk.reloads import RELOAD_COMMANDS
from tests.conftest import Asterisk, RunningApp
from tests.e2e.sipp import SippPool
from tests.e2e.test_calls import PHONES_IP, new_device
from tests.factories import TenantWorld, make_world

Sessions = async_sessionmaker[AsyncSession]


def in_progress_retries() -> float:
    """How many of the applier's reloads Asterisk answered "already in progress" so far."""
    return sum(
        metrics.REGISTRY.get_sample_value(
            "graam_config_reload_retries_total", {"reload": reload, "outcome": "in-progress"}
        )
        or 0.0
        for reload in RELOAD_COMMANDS
    )


class ReloadStorm:
    """An operator (or another tool) reloading res_pjsip again and again on its own AMI
    connection: whatever the applier sends meanwhile may find the loader busy."""

    def __init__(self, asterisk: Asterisk) -> None:
        self._bus = EventBus()
        self._ami = AmiSupervisor(asterisk.ami_config(), self._bus)
        self._task: asyncio.Task[None] | None = None
        self.answers: list[str] = []

    async def __aenter__(self) -> ReloadStorm:
        await self._bus.start()
        await self._ami.start()
        await self._ami.wait_connected(timeout=20)
        self._task = asyncio.create_task(self._reload_forever())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._ami.stop()
        await self._bus.stop()

    async def _reload_forever(self) -> None:
        # Busy half the time: reloading back to back would hold Asterisk's one module-reload
        # lock for good, starving every other reload, which no operator or tool does. Pacing
        # a load generator is not a wait on an outcome.
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            self.answers.append(await self._ami.command("module reload res_pjsip.so", timeout=60))
            await asyncio.sleep(max(0.05, loop.time() - started))


async def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def status_of(client: httpx.AsyncClient, world: TenantWorld) -> dict[str, Any]:
    return await created(await client.get("/api/v1/config/status", headers=world.admin.headers))


async def live(client: httpx.AsyncClient, world: TenantWorld, timeout: float = 20) -> None:
    """Wait until every change committed so far for the tenant is live in Asterisk."""
    committed = (await status_of(client, world))["committed_generation"]
    try:
        async with asyncio.timeout(timeout):
            while (status := await status_of(client, world))["applied_generation"] < committed:
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not live within {timeout:g} s: {status}") from None


async def registers(sipp: SippPool, name: str, password: str, *, timeout: float = 20) -> None:
    """A phone registering with these credentials is accepted (tried until it is)."""
    async with asyncio.timeout(timeout):
        while True:
            result = await sipp.uac(
                "register.xml", ip=PHONES_IP, service=name, auth=(name, password)
            ).run()
            if result.ok:
                return
            await asyncio.sleep(0.2)


async def refused(sipp: SippPool, name: str, password: str) -> None:
    result = await sipp.uac(
        "register_refused.xml", ip=PHONES_IP, service=name, auth=(name, password)
    ).run()
    assert result.ok, result.describe()


# ---- a reset password is live within seconds, whatever else reloads ---------------------------


async def test_a_reset_password_is_live_even_while_another_tenant_reloads(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    asterisk: Asterisk,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    device = await new_device(client, world, "201")
    await live(client, world)
    name, old = device["sip_username"], device["password"]
    await registers(sipp, name, old)

    async with ReloadStorm(asterisk):
        # Another tenant's change: its res_pjsip reload is under way when the reset lands.
        neighbour = asyncio.create_task(new_device(client, other, "201"))
        reset = await client.post(
            f"/api/v1/devices/{device['id']}/reset-password", headers=world.admin.headers
        )
        assert reset.status_code == 200, reset.text
        new = reset.json()["password"]
        assert new != old
        await neighbour
        await live(client, world)
        await live(client, other)
        await registers(sipp, name, new, timeout=10)
        await refused(sipp, name, old)


# ---- one tenant that cannot be rendered holds nobody back -------------------------------------


async def test_a_tenant_that_cannot_render_does_not_delay_another_and_is_reported(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    sipp: SippPool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = await make_world(client, sessions)
    healthy = await make_world(client, sessions)
    phone = await new_device(client, broken, "201")
    await live(client, broken)
    # A value the renderer refuses, written behind the API's back (an import, a manual fix):
    # an extension, which the tenant's dialplan holds.
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE agent_devices SET extension = '2;x1' WHERE id = :id"),
            {"id": phone["id"]},
        )
    # A change of that tenant through the API: committed, but its files cannot be made.
    box = await client.post(
        "/api/v1/voicemail-boxes",
        headers=broken.admin.headers,
        json={"number": "801", "name": "Sales", "pin": "1234"},
    )
    assert box.status_code == 201, box.text

    async def reported() -> dict[str, Any]:
        async with asyncio.timeout(20):
            while (status := await status_of(client, broken))["last_error"] is None:
                await asyncio.sleep(0.05)
        return status

    status = await reported()
    # Meanwhile the other tenant's new phone registers.
    device = await new_device(client, healthy, "201")
    await live(client, healthy)
    await registers(sipp, device["sip_username"], device["password"])

    status = await status_of(client, broken)
    assert status["pending"] is True
    assert status["applied_generation"] < status["committed_generation"]
    assert "2;x1" in status["last_error"]
    assert status["failing_since"] is not None
    # The tenant's previous configuration is still what Asterisk runs: its dialplan's
    # extension 201 (the phone itself is read from Postgres: it never had a file).
    dialplan = await pbx.runtime.ami.command(f"dialplan show 201@t{broken.tenant_id}-internal")
    assert "'201' =>" in dialplan, dialplan

    everyone = await created(
        await client.get("/api/v1/config/status", headers=broken.operator.headers)
    )
    mine = [t for t in everyone["tenants"] if t["tenant_id"] == broken.tenant_id]
    assert mine and mine[0]["pending"] is True
    assert everyone["pending_tenants"] >= 1
    one = await created(await client.get("/api/v1/config/status", headers=healthy.operator_headers))
    assert one["tenant_id"] == healthy.tenant_id and one["pending"] is False

    ready = (await client.get("/readyz")).json()
    assert broken.tenant_id in ready["checks"]["config"]["failing_tenants"]
    monkeypatch.setattr(pbx.runtime.settings, "config_failure_grace", 0.0)
    ready = (await client.get("/readyz")).json()
    assert ready["status"] == "degraded", ready
    assert ready["checks"]["config"]["ok"] is False

    failures = metrics.REGISTRY.get_sample_value(
        "graam_config_render_failures_total", {"tenant": str(broken.tenant_id)}
    )
    assert failures is not None and failures >= 1

    async def audited() -> list[dict[str, Any]]:
        async with asyncio.timeout(10):
            while True:
                entries: list[dict[str, Any]] = (
                    await created(
                        await client.get(
                            "/api/v1/audit?object_type=configuration",
                            headers=broken.admin.headers,
                        )
                    )
                )["items"]
                if entries:
                    return entries
                await asyncio.sleep(0.05)

    assert [e["action"] for e in await audited()] == ["apply-failed"]

    # Repaired, it is live again at its next try, and nothing is reported any more.
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE agent_devices SET extension = '201' WHERE id = :id"),
            {"id": phone["id"]},
        )
    # No new change: the applier tries a failing tenant again by itself (5 s, doubling).
    await live(client, broken, timeout=45)
    status = await status_of(client, broken)
    assert status["last_error"] is None and status["failing_since"] is None
    assert "801" in await pbx.runtime.ami.command(f"voicemail show users for t{broken.tenant_id}")
    ready = (await client.get("/readyz")).json()
    assert broken.tenant_id not in ready["checks"]["config"]["failing_tenants"]


# ---- 50 changes from 10 tenants while reloads overlap -----------------------------------------


async def test_fifty_changes_of_ten_tenants_under_overlapping_reloads_are_all_live(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    asterisk: Asterisk,
) -> None:
    worlds = [await make_world(client, sessions) for _ in range(10)]
    before = in_progress_retries()
    made: dict[int, dict[str, list[Any]]] = {w.tenant_id: {} for w in worlds}
    slots = asyncio.Semaphore(10)

    async def change(world: TenantWorld, kind: str, call: Any) -> None:
        async with slots:
            made[world.tenant_id].setdefault(kind, []).append(await call())

    def changes(world: TenantWorld) -> list[Any]:
        admin = world.admin.headers

        def box(number: str) -> Any:
            return lambda: created_post("/api/v1/voicemail-boxes", admin, number)

        async def created_post(url: str, headers: dict[str, str], number: str) -> Any:
            body = {"number": number, "name": f"Box {number}", "pin": "1234"}
            return await created(await client.post(url, headers=headers, json=body))

        async def queue() -> Any:
            return await created(
                await client.post("/api/v1/queues", headers=admin, json={"name": "sales"})
            )

        return [
            change(world, "device", lambda: new_device(client, world, "201")),
            change(world, "device", lambda: new_device(client, world, "202")),
            change(world, "box", box("801")),
            change(world, "box", box("802")),
            change(world, "queue", queue),
        ]

    async with ReloadStorm(asterisk):
        await asyncio.gather(*(c for w in worlds for c in changes(w)))
        assert sum(len(v) for m in made.values() for v in m.values()) == 50
        # Until the applier has met Asterisk's "already in progress" for real (the storm
        # makes it likely on the first pass; each further change is another chance).
        async with asyncio.timeout(60):
            extra = 0
            while in_progress_retries() <= before:
                world = worlds[extra % len(worlds)]
                extra += 1
                await created(
                    await client.post(
                        "/api/v1/voicemail-boxes",
                        headers=world.admin.headers,
                        json={"number": f"9{extra:02d}", "name": "Extra", "pin": "1234"},
                    )
                )
                await live(client, world)
        for world in worlds:
            await live(client, world, timeout=60)

    everyone = await created(
        await client.get("/api/v1/config/status", headers=worlds[0].operator.headers)
    )
    ours = {t["tenant_id"]: t for t in everyone["tenants"] if t["tenant_id"] in made}
    assert len(ours) == 10
    assert all(t["applied_generation"] == t["committed_generation"] for t in ours.values()), ours

    ami = pbx.runtime.ami
    endpoints = await ami.command("pjsip show endpoints")
    for world in worlds:
        tid = world.tenant_id
        for device in made[tid]["device"]:
            assert device["sip_username"] in endpoints
        for extension in ("201", "202"):
            shown = await ami.command(f"dialplan show {extension}@t{tid}-internal")
            assert f"t{tid}-dest" in shown, shown
        boxes = await ami.command(f"voicemail show users for t{tid}")
        for number in ("801", "802"):
            assert number in boxes, boxes
        queue = made[tid]["queue"][0]
        assert "strategy" in await ami.command(f"queue show t{tid}-q{queue['id']}")


# ---- one trunk that cannot be rendered holds nobody back --------------------------------------


async def test_a_trunk_that_cannot_render_keeps_its_file_and_delays_no_device(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    name = f"carrier{world.tenant_id}"
    trunk = await created(
        await client.post(
            "/api/v1/trunks",
            headers=world.operator.headers,
            json={"name": name, "host": "127.0.0.99", "port": 5060, "country": "FR"},
        )
    )
    trunk_path = asterisk.info.config_dir / "trunks" / f"{trunk['id']}.conf"

    async def wait_for(check: Any, what: str) -> None:
        try:
            async with asyncio.timeout(20):
                while not await check():
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"no {what} within 20 s") from None

    async def trunk_written() -> bool:
        return trunk_path.exists() and f"trunk-{name}" in trunk_path.read_text()

    await wait_for(trunk_written, "trunk file")
    before = trunk_path.read_text()
    # A name the renderer refuses, written behind the API's back; then a full pass (as after
    # every start and AMI reconnect).
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE trunks SET name = :name WHERE id = :id"),
            {"name": f"{name}\n[evil]", "id": trunk["id"]},
        )
    applier.request(None)

    async def trunk_reported() -> bool:
        everyone = await created(
            await client.get("/api/v1/config/status", headers=world.operator.headers)
        )
        return any(t["trunk_id"] == trunk["id"] for t in everyone["failing_trunks"])

    await wait_for(trunk_reported, "failing trunk in the status")
    device = await new_device(client, world, "201")
    await live(client, world)
    await registers(sipp, device["sip_username"], device["password"])
    assert trunk_path.read_text() == before
    endpoint = await pbx.runtime.ami.command(f"pjsip show endpoint trunk-{name}")
    assert "Unable to find object" not in endpoint, endpoint
    ready = (await client.get("/readyz")).json()
    assert trunk["id"] in ready["checks"]["config"]["failing_trunks"]

    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE trunks SET name = :name WHERE id = :id"), {"name": name, "id": trunk["id"]}
        )
    applier.request(None)

    async def trunk_fine() -> bool:
        return not await trunk_reported()

    await wait_for(trunk_fine, "recovery of the trunk")
    ready = (await client.get("/readyz")).json()
    assert trunk["id"] not in ready["checks"]["config"]["failing_trunks"]
    deleted = await client.delete(f"/api/v1/trunks/{trunk['id']}", headers=world.operator.headers)
    assert deleted.status_code == 204, deleted.text
