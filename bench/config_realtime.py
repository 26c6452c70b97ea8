"""The realtime case of bench.config_render: devices Asterisk reads from Postgres.

Measured on the bench's own Asterisk, after PJSIP synchronized every realtime AOR:

- a device change: a new password committed by the service the API calls, then one sipp
  REGISTER with it (commit → REGISTER accepted, sipp's own process start included);
- its floor in the same run: the same REGISTER for a device that did not change (what sipp,
  Asterisk and the realtime lookups cost with no change), and one ``ps_endpoints`` row read
  by id through the same Postgres;
- a new device's introduction to PJSIP's qualify (``pjsip reload qualify aor``, which waits
  for PJSIP's management queue): Asterisk 22 reads every endpoint for each AOR it did not
  know, so this grows with the node's endpoints; ``SELECT * FROM ps_endpoints`` is its floor.

With several nodes, every read goes through the bench node's own view of the devices (the
connection setting ``graam.node``, as its Asterisk sends it): the devices changed and
introduced are that node's tenants'.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.readings import percentile
from graam_pbx.agents import service as devices
from graam_pbx.ami import AmiSupervisor
from graam_pbx.auth.principal import Principal, Role, Scope
from graam_pbx.db import session_factory

REGISTER_SCENARIO = Path(__file__).resolve().parent.parent / "tests/e2e/scenarios/register.xml"
HA1 = "0123456789abcdef0123456789abcdef"


@dataclass(frozen=True)
class Target:
    """Where the bench's phone sends its REGISTERs, and from which loopback address."""

    asterisk_ip: str
    sip_port: int
    phone_ip: str
    node: str  # the Asterisk's systemname: graam.node of its realtime connection


async def connect_as(url: str, target: Target) -> asyncpg.Connection:
    """A connection that sees the SIP views as the target's Asterisk does."""
    return await asyncpg.connect(url, server_settings={"graam.node": target.node})


def phone_port(phone_ip: str) -> int:
    """A UDP port free on the bench phone's address now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((phone_ip, 0))
        port: int = probe.getsockname()[1]
    return port


async def register_once(work: Path, target: Target, name: str, password: str, serial: str) -> bool:
    """One REGISTER (challenged, answered with ``password``): True when Asterisk took it."""
    directory = work / "sipp" / serial
    directory.mkdir(parents=True)
    process = await asyncio.create_subprocess_exec(
        *("sipp", f"{target.asterisk_ip}:{target.sip_port}", "-m", "1"),
        *("-sf", str(REGISTER_SCENARIO), "-i", target.phone_ip),
        *("-p", str(phone_port(target.phone_ip)), "-nostdin", "-timeout", "10s"),
        *("-timeout_error", "-s", name, "-au", name, "-ap", password),
        cwd=directory,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await process.wait() == 0


def ms(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 1),
        "p99": round(percentile(values, 0.99), 1),
    }


async def device_changes(
    engine: AsyncEngine, url: str, work: Path, target: Target, changes: int
) -> dict[str, dict[str, float]]:
    """Each of ``changes`` devices: a new password then its REGISTER (the change), then the
    same REGISTER again (the floor: nothing changed)."""
    sessions = session_factory(engine)
    conn = await connect_as(url, target)
    try:
        rows = await conn.fetch(
            "SELECT d.id, d.tenant_id FROM agent_devices d"
            " JOIN ps_endpoints e ON e.id = d.sip_username ORDER BY random() LIMIT $1",
            changes,
        )
    finally:
        await conn.close()
    changed: list[float] = []
    unchanged: list[float] = []
    for serial, row in enumerate(rows):
        scope = Scope(
            principal=Principal(
                user_id=0, role=Role.ADMIN, tenant_id=row["tenant_id"], label="bench"
            ),
            tenant_id=row["tenant_id"],
        )
        async with sessions() as session, session.begin():
            device, password = await devices.reset_password(session, scope, row["id"])
            name = device.sip_username
        for label, timings in (("change", changed), ("same", unchanged)):
            started = time.perf_counter()
            if not await register_once(work, target, name, password, f"{label}-{serial}"):
                raise RuntimeError(f"{name}: REGISTER with the new password refused ({label})")
            timings.append((time.perf_counter() - started) * 1000)
    return {"change": ms(changed), "unchanged": ms(unchanged)}


async def endpoint_reads(url: str, target: Target, reads: int) -> dict[str, float]:
    """One ``ps_endpoints`` row by id (p50, ms), and every row at once (ms): the floors of a
    REGISTER's lookup and of PJSIP's read of every endpoint (the node's)."""
    conn = await connect_as(url, target)
    try:
        names = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM ps_endpoints ORDER BY random() LIMIT $1", reads
            )
        ]
        one = []
        for name in names:
            started = time.perf_counter()
            await conn.fetchrow("SELECT * FROM ps_endpoints WHERE id = $1", name)
            one.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        listed = len(await conn.fetch("SELECT * FROM ps_endpoints"))
        every = (time.perf_counter() - started) * 1000
    finally:
        await conn.close()
    return {"one_p50": round(statistics.median(one), 3), "all": round(every, 1), "rows": listed}


async def introductions(
    url: str, target: Target, ami: AmiSupervisor, count: int
) -> dict[str, float]:
    """``count`` devices added behind PJSIP's back, each introduced as the applier does
    (``pjsip reload qualify aor``, answered once PJSIP's management queue ran it), in ms."""
    conn = await connect_as(url, target)
    try:
        user = await conn.fetchrow(
            "SELECT u.id, u.tenant_id FROM users u JOIN agent_devices d ON d.user_id = u.id"
            " JOIN ps_endpoints e ON e.id = d.sip_username ORDER BY u.id DESC LIMIT 1"
        )
        assert user is not None
        names = [f"bench-new-{n}" for n in range(count)]
        await conn.executemany(
            "INSERT INTO agent_devices (tenant_id, user_id, sip_username, password_ha1, "
            "extension, codecs, transport, max_contacts, version) "
            "VALUES ($1, $2, $3, $4, $5, '{ulaw}', 'udp', 1, 1)",
            [
                (user["tenant_id"], user["id"], name, HA1, str(900 + n))
                for n, name in enumerate(names)
            ],
        )
    finally:
        await conn.close()
    timings = []
    for name in names:
        started = time.perf_counter()
        answer = await ami.command(f"pjsip reload qualify aor {name}", timeout=600)
        timings.append((time.perf_counter() - started) * 1000)
        if "Synchronizing" not in answer:
            raise RuntimeError(f"{name}: not introduced: {answer!r}")
    return {"p50": round(statistics.median(timings), 1), "max": round(max(timings), 1)}
