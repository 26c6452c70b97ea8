"""Config generation at scale: full render, one tenant's change, and Asterisk's reloads.

python -m bench.config_render [--quick] [--tenants N]

Prints one JSON line. The physical limit in the same run: writing the same bytes plainly.
Asterisk's reload times are reported separately (they are Asterisk's, not ours), with the
largest task-processor queue seen while reloading.

The realtime case (docs/realtime-sip.md): every device is an endpoint Asterisk reads from
Postgres. A device's new password is committed by the service the API calls
(``agents.service.reset_password``, without HTTP), then one sipp REGISTER with it is sent at
once: ``realtime_change_*_ms`` is commit → REGISTER accepted, sipp's own start included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.readings import percentile
from bench.stack import ami_config, asterisk_sandbox
from graam_pbx.agents import service as devices
from graam_pbx.ami import AmiSupervisor, EventBus
from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.auth.principal import Principal, Role, Scope
from graam_pbx.db import create_engine, migrate, session_factory
from graam_pbx.sandbox.asterisk import AsteriskSandbox
from graam_pbx.sandbox.ports import free_port
from graam_pbx.sandbox.postgres import EmbeddedPostgres, EmbeddedPostgresConfig

AGENTS, QUEUES, DIDS = 20, 3, 5
HA1 = "0123456789abcdef0123456789abcdef"
REGISTER_SCENARIO = Path(__file__).resolve().parent.parent / "tests/e2e/scenarios/register.xml"
PHONE_IP = "127.0.0.91"  # the bench's phone, on its own loopback address


async def populate(url: str, tenants: int) -> None:
    """Tenants with 20 agents and devices, 3 queues of all agents, 1 IVR, 5 DIDs, a schedule."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO trunks (name, host, port, transport, country, enabled, "
            "version) VALUES ('carrier', '127.0.0.2', 5060, 'udp', 'FR', true, 1)"
        )
        await conn.copy_records_to_table(
            "tenants",
            columns=[
                "slug",
                "name",
                "country",
                "timezone",
                "status",
                "plan",
                "licences",
                "version",
            ],
            records=[
                (f"tenant{t}", f"Tenant {t}", "FR", "Europe/Paris", "active", "standard", AGENTS, 1)
                for t in range(1, tenants + 1)
            ],
        )
        tenant_ids = [r["id"] for r in await conn.fetch("SELECT id FROM tenants ORDER BY id")]
        users, devices = [], []
        for t in tenant_ids:
            for a in range(AGENTS):
                users.append((t, f"agent{a}@t{t}.example", f"Agent {a}", "agent", "x", False, 1))
        await conn.copy_records_to_table(
            "users",
            columns=[
                "tenant_id",
                "email",
                "display_name",
                "role",
                "password_hash",
                "disabled",
                "version",
            ],
            records=users,
        )
        user_rows = await conn.fetch("SELECT id, tenant_id FROM users ORDER BY id")
        by_tenant: dict[int, list[int]] = {}
        for row in user_rows:
            by_tenant.setdefault(row["tenant_id"], []).append(row["id"])
        for t, agent_ids in by_tenant.items():
            for a, user_id in enumerate(agent_ids):
                devices.append(
                    (
                        t,
                        user_id,
                        f"tenant{t}-a{a}",
                        HA1,
                        str(200 + a),
                        ["ulaw", "alaw"],
                        "udp",
                        1,
                        1,
                    )
                )
        await conn.copy_records_to_table(
            "agent_devices",
            columns=[
                "tenant_id",
                "user_id",
                "sip_username",
                "password_ha1",
                "extension",
                "codecs",
                "transport",
                "max_contacts",
                "version",
            ],
            records=devices,
        )
        await conn.copy_records_to_table(
            "queues",
            columns=[
                "tenant_id",
                "name",
                "strategy",
                "ring_timeout",
                "retry",
                "wrapup_time",
                "music_on_hold",
                "announce_position",
                "announce_holdtime",
                "announce_frequency",
                "weight",
                "version",
            ],
            records=[
                (t, f"q{q}", "leastrecent", 15, 5, 0, "default", False, False, 0, 0, 1)
                for t in tenant_ids
                for q in range(QUEUES)
            ],
        )
        queue_rows = await conn.fetch("SELECT id, tenant_id FROM queues")
        await conn.copy_records_to_table(
            "queue_members",
            columns=["tenant_id", "queue_id", "user_id", "penalty"],
            records=[
                (q["tenant_id"], q["id"], u, 0)
                for q in queue_rows
                for u in by_tenant[q["tenant_id"]]
            ],
        )
        first_queue = {q["tenant_id"]: q["id"] for q in queue_rows}
        await conn.copy_records_to_table(
            "ivr_menus",
            columns=[
                "tenant_id",
                "name",
                "timeout_s",
                "repeat_count",
                "timeout_dest_type",
                "invalid_dest_type",
                "version",
            ],
            records=[(t, "main", 5, 2, "hangup", "hangup", 1) for t in tenant_ids],
        )
        menus = {
            r["tenant_id"]: r["id"] for r in await conn.fetch("SELECT id, tenant_id FROM ivr_menus")
        }
        await conn.copy_records_to_table(
            "ivr_options",
            columns=["tenant_id", "menu_id", "digit", "dest_type", "dest_id"],
            records=[(t, menus[t], "1", "queue", first_queue[t]) for t in tenant_ids],
        )
        await conn.copy_records_to_table(
            "schedules",
            columns=["tenant_id", "name", "timezone", "weekly", "holidays", "version"],
            records=[
                (
                    t,
                    "office",
                    "Europe/Paris",
                    json.dumps([{"day": d, "open": "09:00", "close": "17:00"} for d in range(5)]),
                    "[]",
                    1,
                )
                for t in tenant_ids
            ],
        )
        schedules = {
            r["tenant_id"]: r["id"] for r in await conn.fetch("SELECT id, tenant_id FROM schedules")
        }
        numbers = [
            (f"+3319{i:08d}", "FR", "geographic", 1, "EUR", "assigned", t, 1)
            for i, t in enumerate(t for t in tenant_ids for _ in range(DIDS))
        ]
        await conn.copy_records_to_table(
            "phone_numbers",
            columns=[
                "e164",
                "country",
                "number_type",
                "monthly_price",
                "currency",
                "status",
                "tenant_id",
                "version",
            ],
            records=numbers,
        )
        await conn.execute(
            "INSERT INTO inbound_routes (tenant_id, number_id, schedule_id, open_dest_type, "
            "open_dest_id, closed_dest_type, version) SELECT n.tenant_id, n.id, s.id, 'ivr', "
            "m.id, 'hangup', 1 FROM phone_numbers n JOIN schedules s ON s.tenant_id = "
            "n.tenant_id JOIN ivr_menus m ON m.tenant_id = n.tenant_id"
        )
        del schedules
    finally:
        await conn.close()


def _aor_loaded(output: str, name: str) -> bool:
    return "Unable to" not in output and re.search(re.escape(name), output) is not None


def plain_write(files: dict[str, str], root: Path) -> float:
    """The physical limit: the same bytes written with no comparison and no rename."""
    started = time.perf_counter()
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
    return time.perf_counter() - started


async def taskprocessor_peak(ami: AmiSupervisor, stop: asyncio.Event) -> int:
    """The largest queue of any task processor seen until ``stop``."""
    peak = 0
    while not stop.is_set():
        output = await ami.command("core show taskprocessors")
        for line in output.splitlines():
            fields = line.split()
            if len(fields) >= 5 and fields[1].isdigit() and fields[2].isdigit():
                peak = max(peak, int(fields[2]))
        await asyncio.sleep(0.25)  # the listing itself is work for Asterisk at this size
    return peak


def phone_port() -> int:
    """A UDP port free on the bench phone's address now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((PHONE_IP, 0))
        port: int = probe.getsockname()[1]
    return port


async def register_once(work: Path, sip_port: int, name: str, password: str, serial: int) -> bool:
    """One REGISTER (challenged, answered with ``password``): True when Asterisk took it."""
    directory = work / "sipp" / str(serial)
    directory.mkdir(parents=True)
    process = await asyncio.create_subprocess_exec(
        *("sipp", f"127.0.0.1:{sip_port}", "-m", "1", "-sf", str(REGISTER_SCENARIO)),
        *("-i", PHONE_IP, "-p", str(phone_port()), "-nostdin"),
        *("-timeout", "10s", "-timeout_error", "-s", name, "-au", name, "-ap", password),
        cwd=directory,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await process.wait() == 0


async def realtime_changes(
    engine: AsyncEngine, url: str, work: Path, sip_port: int, changes: int
) -> list[float]:
    """Commit → REGISTER accepted, in ms, for ``changes`` devices given a new password."""
    sessions = session_factory(engine)
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT id, tenant_id FROM agent_devices ORDER BY random() LIMIT $1", changes
        )
    finally:
        await conn.close()
    timings = []
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
        started = time.perf_counter()
        if not await register_once(work, sip_port, name, password, serial):
            raise RuntimeError(f"{name}: REGISTER with the new password refused")
        timings.append((time.perf_counter() - started) * 1000)
    return timings


async def main(tenants: int, changes: int, *, asterisk: bool = True) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="graam-bench-"))
    pg = EmbeddedPostgres(EmbeddedPostgresConfig(work / "pg", port=free_port()))
    await pg.start()
    admin = await asyncpg.connect(pg.url())
    await admin.execute("CREATE DATABASE bench")
    await admin.close()
    url = pg.url("bench")
    sandbox: AsteriskSandbox | None = None
    try:
        await migrate(url)
        await populate(url, tenants)
        # The setup's own writes are flushed first, so the disk is not busy with them below.
        conn = await asyncpg.connect(url)
        await conn.execute("CHECKPOINT")
        await conn.close()
        await asyncio.to_thread(os.sync)
        engine = create_engine(url, pool_size=2)
        config_dir = work / "graam"
        applier = ConfigApplier(engine, config_dir)
        # A running control plane has its rendering workers; their start is reported apart.
        started = time.perf_counter()
        await applier.prepare()
        workers_start_s = time.perf_counter() - started
        started = time.perf_counter()
        full = await applier.apply(None)
        full_render_s = time.perf_counter() - started
        files = {str(p.relative_to(config_dir)): p.read_text() for p in config_dir.rglob("*.conf")}
        total_bytes = sum(len(t.encode()) for t in files.values())
        plain_write_s = plain_write(files, work / "plain")

        conn = await asyncpg.connect(url)
        tenant_ids = [r["id"] for r in await conn.fetch("SELECT id FROM tenants")]
        timings = []
        for i in range(changes):
            tenant = random.choice(tenant_ids)
            await conn.execute(
                "UPDATE queues SET ring_timeout = $1, version = version + 1 "
                "WHERE id = (SELECT min(id) FROM queues WHERE tenant_id = $2)",
                10 + i % 50,
                tenant,
            )
            started = time.perf_counter()
            result = await applier.apply({tenant})
            timings.append((time.perf_counter() - started) * 1000)
            assert result.written == {f"tenants/t{tenant}/queues.conf"} or i > 0
        await conn.close()

        # Asterisk's own reload time at this size, from the generated files.
        state = work / "asterisk"
        sandbox = asterisk_sandbox(state)
        info = await sandbox.start()
        shutil.copytree(config_dir, info.config_dir, dirs_exist_ok=True)
        bus = EventBus()
        await bus.start()
        ami = AmiSupervisor(
            ami_config(info, ping_interval=30, ping_timeout=30, action_timeout=300), bus
        )
        await ami.start()
        await ami.wait_connected(30)
        # Devices are read from the bench database (docs/realtime-sip.md): Asterisk connects
        # with the generated res_pgsql.conf just copied.
        await ami.command("module reload res_config_pgsql.so", timeout=60)
        reloads: dict[str, float] = {}
        peaks: dict[str, int] = {}
        for name, command in (
            ("dialplan", "dialplan reload"),
            ("pjsip", "module reload res_pjsip.so"),
        ):
            stop = asyncio.Event()
            watcher = asyncio.create_task(taskprocessor_peak(ami, stop))
            started = time.perf_counter()
            await ami.command(command, timeout=600)
            if name == "pjsip":
                # res_pjsip applies its reload in the background: wait until it is all there.
                last = f"tenant{tenants}-a{AGENTS - 1}"
                # Polls Asterisk's CLI: there is no event for "reload finished".
                while not _aor_loaded(await ami.command(f"pjsip show aor {last}"), last):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            reloads[name] = time.perf_counter() - started
            stop.set()
            peaks[name] = await watcher
        realtime = await realtime_changes(engine, url, work, sandbox.config.sip_port, changes)
        await ami.stop()
        await bus.stop()
        await applier.stop()
        await engine.dispose()
        timings.sort()
        return {
            "bench": "config_render",
            "tenants": tenants,
            "files": len(files),
            "bytes": total_bytes,
            "full_render_s": round(full_render_s, 3),
            "full_snapshot_s": round(full.snapshot_s, 3),
            "full_files_s": round(full.files_s, 3),
            "full_render_cpu_s": round(full.render_cpu_s, 3),
            "workers_start_s": round(workers_start_s, 3),
            "files_mb_per_s": round(total_bytes / full.files_s / 1e6, 1),
            "plain_write_s": round(plain_write_s, 3),
            "plain_write_mb_per_s": round(total_bytes / plain_write_s / 1e6, 1),
            "incremental_p50_ms": round(statistics.median(timings), 1),
            "incremental_p95_ms": round(timings[int(len(timings) * 0.95) - 1], 1),
            "dialplan_reload_s": round(reloads["dialplan"], 3),
            "pjsip_reload_s": round(reloads["pjsip"], 3),
            "realtime_endpoints": tenants * AGENTS,
            "realtime_change_p50_ms": round(statistics.median(realtime), 1),
            "realtime_change_p99_ms": round(percentile(realtime, 0.99), 1),
            "taskprocessor_peak_queue": peaks,
        }
    finally:
        if sandbox is not None:
            await sandbox.stop()
        await pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100 tenants, 20 changes")
    parser.add_argument("--tenants", type=int, default=1000)
    args = parser.parse_args()
    tenants = 100 if args.quick else args.tenants
    print(json.dumps(asyncio.run(main(tenants, 20 if args.quick else 100))))
