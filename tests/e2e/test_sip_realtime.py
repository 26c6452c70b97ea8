"""Devices' SIP endpoints live from Postgres: a change is what Asterisk reads at the next
REGISTER, and nothing of res_pjsip is reloaded for it.

"At the next REGISTER" is asserted as such: the first REGISTER after the API's answer is
accepted (or refused), never a REGISTER tried until it is. "No reload" is asked of the node:
every module reload publishes an AMI ``Reload`` event; the test listens from before the change
until a reload of its own (a marker) is heard, after the applier has finished with the change.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami import Message
from graam_pbx.asterisk.sip_cache import CACHES, EXPIRE_ALL_ABOVE, SipCache
from tests.conftest import RunningApp
from tests.e2e import test_run_command
from tests.e2e.console import Console
from tests.e2e.sipp import SippPool
from tests.e2e.test_calls import PHONES_IP, new_device
from tests.e2e.test_config_live import live, registers
from tests.factories import make_world
from tests.waiting import until

Sessions = async_sessionmaker[AsyncSession]

# A module whose reload changes nothing the tests use: the marker that ends the listening.
MARKER_MODULE = "cdr_custom.so"
# `graam-pbx run` in a data directory of its own, as test_run_command.py runs it.
run_env = test_run_command.run_env
console = test_run_command.console
# How `graam-pbx run` shows its demo phone's credentials on its first run.
DEMO_PHONE = re.compile(r"SIP user (\S+)\s+password (\S+)")


async def register_once(sipp: SippPool, name: str, password: str, *, accepted: bool) -> None:
    """One REGISTER (challenged, then answered with these credentials): accepted or refused."""
    scenario = "register.xml" if accepted else "register_refused.xml"
    result = await sipp.uac(scenario, ip=PHONES_IP, service=name, auth=(name, password)).run()
    assert result.ok, result.describe()


@asynccontextmanager
async def reloads_heard(pbx: RunningApp) -> AsyncIterator[list[str]]:
    """The modules Asterisk reloaded while the block ran, until the applier was done with it.

    On leaving, the marker module is reloaded and its Reload event awaited: every reload made
    before it has been heard by then (one AMI connection delivers events in order).
    """
    modules: list[str] = []
    marker = asyncio.Event()

    async def on_reload(message: Message) -> None:
        module = message.get("Module", "")
        modules.append(module)
        if module == MARKER_MODULE:
            marker.set()

    bus, ami = pbx.runtime.bus, pbx.runtime.ami
    subscription = bus.subscribe(f"e2e-reloads-{uuid.uuid4().hex}", ["Reload"], on_reload)
    try:
        yield modules
        answer = await ami.command(f"module reload {MARKER_MODULE}", timeout=30)
        assert "reloaded successfully" in answer, answer
        async with asyncio.timeout(20):
            await marker.wait()
    finally:
        await bus.unsubscribe(subscription)
    modules.remove(MARKER_MODULE)


def pjsip_reloads(modules: list[str]) -> list[str]:
    return [module for module in modules if "pjsip" in module or module == ""]


async def contacts_of(sessions: Sessions, name: str) -> int:
    async with sessions() as session:
        count = await session.scalar(
            text("SELECT count(*) FROM ps_contacts WHERE endpoint = :name"), {"name": name}
        )
    return int(count or 0)


async def test_a_new_password_is_live_at_the_next_register_with_no_pjsip_reload(
    pbx: RunningApp, client: httpx.AsyncClient, sessions: Sessions, sipp: SippPool
) -> None:
    world = await make_world(client, sessions)
    device = await new_device(client, world, "201")
    name, old = device["sip_username"], device["password"]
    await live(client, world)
    # The session's first test may run before the applier's first pass pointed Asterisk at
    # this database: tried until accepted here, once per REGISTER from now on.
    await registers(sipp, name, old)
    assert await contacts_of(sessions, name) == 1  # Asterisk wrote the registration

    async with reloads_heard(pbx) as modules:
        reset = await client.post(
            f"/api/v1/devices/{device['id']}/reset-password", headers=world.admin.headers
        )
        assert reset.status_code == 200, reset.text
        new = reset.json()["password"]
        await register_once(sipp, name, old, accepted=False)
        await register_once(sipp, name, new, accepted=True)
        await live(client, world)  # whatever the applier does for the change is done

    assert pjsip_reloads(modules) == [], modules


async def test_a_created_device_registers_at_once_and_a_deleted_one_is_refused(
    pbx: RunningApp, client: httpx.AsyncClient, sessions: Sessions, sipp: SippPool
) -> None:
    world = await make_world(client, sessions)
    await new_device(client, world, "201")  # the tenant's configuration exists already
    await live(client, world)

    async with reloads_heard(pbx) as modules:
        device: dict[str, Any] = await new_device(client, world, "202")
        name, password = device["sip_username"], device["password"]
        await register_once(sipp, name, password, accepted=True)
        assert await contacts_of(sessions, name) == 1

        deleted = await client.delete(
            f"/api/v1/devices/{device['id']}", headers=world.admin.headers
        )
        assert deleted.status_code == 204, deleted.text
        assert await contacts_of(sessions, name) == 0  # its registration went with it
        await register_once(sipp, name, password, accepted=False)
        await live(client, world)

    assert pjsip_reloads(modules) == [], modules


async def test_asterisk_reads_the_device_from_the_view(
    pbx: RunningApp, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    """What `pjsip show endpoint` says of a realtime device: its tenant's context, its
    variables, its caller ID from the agent's name, its AOR and auth."""
    world = await make_world(client, sessions)
    device = await new_device(client, world, "203")
    await live(client, world)
    name = device["sip_username"]
    shown = await pbx.runtime.ami.command(f"pjsip show endpoint {name}", timeout=30)
    tid = world.tenant_id
    assert f"t{tid}-internal" in shown, shown
    # `pjsip show endpoint` lists each set_var as a parameter of its own.
    for variable, value in (
        ("__GRAAM_TENANT", tid),
        ("__GRAAM_DEVICE", device["id"]),
        ("__GRAAM_AGENT", world.agent.user_id),
    ):
        assert re.search(rf"^\s*{variable}\s*: {value}\s*$", shown, re.M), shown
    assert "<203>" in shown, shown
    assert re.search(r"^\s*direct_media\s*: false\s*$", shown, re.M), shown
    assert re.search(r"^\s*media_address\s*: 127\.0\.0\.1\s*$", shown, re.M), shown
    aor = await pbx.runtime.ami.command(f"pjsip show aor {name}", timeout=30)
    assert re.search(r"^\s*support_path\s*: true\s*$", aor, re.M), aor


async def test_a_device_changed_after_the_node_cached_it_is_read_anew(
    pbx: RunningApp, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    """The node keeps each endpoint and AOR it reads in memory (sorcery.conf's caches); a
    change to the device expires its copies (asterisk/sip_cache.py), so what the node shows
    next is the new rows (codecs: the endpoint; contact limit: the AOR), not the copies it
    would otherwise keep for ten minutes."""
    world = await make_world(client, sessions)
    device = await new_device(client, world, "204")
    await live(client, world)
    name = device["sip_username"]
    ami = pbx.runtime.ami

    async def shown() -> tuple[str, str]:
        endpoint = await ami.command(f"pjsip show endpoint {name}", timeout=30)
        aor = await ami.command(f"pjsip show aor {name}", timeout=30)
        return endpoint, aor

    endpoint, aor = await shown()
    assert re.search(r"^\s*allow\s*: \(ulaw\|alaw\)\s*$", endpoint, re.M), endpoint
    assert re.search(r"^\s*max_contacts\s*: 1\s*$", aor, re.M), aor
    for cache in CACHES:  # read from Postgres once and now kept
        dump = await ami.command(f"sorcery memory cache dump {cache}", timeout=30)
        assert name in dump, dump

    changed = await client.patch(
        f"/api/v1/devices/{device['id']}",
        headers=world.admin.headers,
        json={"codecs": ["alaw"], "max_contacts": 3},
    )
    assert changed.status_code == 200, changed.text

    async def new_row_shown() -> bool:
        endpoint, aor = await shown()
        return bool(
            re.search(r"^\s*allow\s*: \(alaw\)\s*$", endpoint, re.M)
            and re.search(r"^\s*max_contacts\s*: 3\s*$", aor, re.M)
        )

    await until(new_row_shown, "new codecs and contact limit shown by the node", timeout=10)


async def test_the_node_forgets_the_devices_it_is_told_then_again_or_every_device(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A node's SipCache on the real node: every entry when it starts, the named devices'
    at once and again a second later, every entry past EXPIRE_ALL_ABOVE devices; a device
    the node does not hold is no failure (Asterisk refuses to expire what it lacks)."""
    world = await make_world(client, sessions)
    first = (await new_device(client, world, "205"))["sip_username"]
    second = (await new_device(client, world, "206"))["sip_username"]
    await live(client, world)
    ami = pbx.runtime.ami

    async def read(*names: str) -> None:
        for name in names:
            await ami.command(f"pjsip show endpoint {name}", timeout=30)
            await ami.command(f"pjsip show aor {name}", timeout=30)

    async def held() -> set[str]:
        names: set[str] = set()
        for cache in CACHES:
            dump = await ami.command(f"sorcery memory cache dump {cache}", timeout=30)
            names |= {name for name in (first, second) if name in dump}
        return names

    async def rounds(count: int) -> None:
        await until(lambda: _true(cache.rounds >= count), f"{count} expiry rounds", timeout=10)

    await read(first, second)
    cache = SipCache(ami)
    caplog.set_level(logging.WARNING, logger="graam_pbx.asterisk.sip_cache")
    await cache.start()
    try:
        await rounds(1)
        assert await held() == set()  # a new cache expiry forgets every entry

        # (The app's own expiries of these new devices may come too: only what an expiry
        # removes is asserted, never what stays.)
        await read(first, second)
        cache.expire({first, "no-such-device"})
        await rounds(2)
        assert first not in await held()
        await read(first)
        await rounds(3)  # the same devices again, a second later
        assert first not in await held()

        await read(first, second)
        cache.expire({second, *(f"other-{n}" for n in range(EXPIRE_ALL_ABOVE))})
        await rounds(4)
        assert await held() == set()
    finally:
        await cache.stop()
    assert not [r for r in caplog.records if r.name == "graam_pbx.asterisk.sip_cache"]


async def _true(value: bool) -> bool:
    return value


async def test_make_run_registers_its_demo_phone_from_postgres(
    console: Console, run_env: dict[str, str], tmp_path: Path
) -> None:
    """`graam-pbx run` (what `make run` starts): its own Postgres and Asterisk sandbox, and the
    demo phone it prints registers, read by Asterisk from the views."""
    await console.wait_for_line("[api]", timeout=300)
    phone = next((m for line in console.lines if (m := DEMO_PHONE.search(line))), None)
    assert phone is not None, console.text()
    name, password = phone.group(1), phone.group(2)
    pool = SippPool(tmp_path, f"127.0.0.1:{run_env['GRAAM_SIP_PORT']}")
    try:
        await registers(pool, name, password, timeout=60)
    finally:
        await pool.close()
