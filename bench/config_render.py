"""Config generation at scale: full render, one tenant's change, and Asterisk's reloads.

python -m bench.config_render [--quick] [--tenants N] [--nodes K] [--reload-deadline S]
                              [--dialplan-only]

Prints one JSON line. The physical limit in the same run: writing the same bytes plainly.
Asterisk's reload times are reported separately (they are Asterisk's, not ours), with the
largest task-processor queue seen while reloading.

The realtime case (docs/realtime-sip.md): every device is an endpoint Asterisk reads from
Postgres. A device's new password is committed by the service the API calls
(``agents.service.reset_password``, without HTTP), then one sipp REGISTER with it is sent at
once: ``realtime_change_*_ms`` is commit → REGISTER accepted, sipp's own start included.
Its floors in the same run (bench/config_realtime.py): the same REGISTER for a device that
did not change, and one ``ps_endpoints`` row by id. A new device's introduction to PJSIP's
qualify is measured too, with its floor (every ``ps_endpoints`` row read once).

``--dialplan-only`` leaves out PJSIP's reload and the realtime case (their keys are null):
the dialplan's reload alone, much sooner than the realtime case at 10,000
tenants.

``--nodes K`` spreads the tenants over K nodes (placements, one tenant in K each): the
bench's Asterisk is one of them, and holds only its tenants, as a node of a deployment does
(docs/nodes.md): the file pass writes its tenants' files and its SIP views list its
tenants' devices (``graam.node``). The database still holds every tenant
(``realtime_endpoints``); ``node_tenants`` and ``node_endpoints`` say what the node holds.
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

from bench.config_realtime import Target, device_changes, endpoint_reads, introductions
from bench.stack import ami_config
from graam_pbx import heap
from graam_pbx.ami import AmiError, AmiSupervisor, EventBus
from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.db import create_engine, migrate
from graam_pbx.sandbox.asterisk import AsteriskSandbox, AsteriskSandboxConfig
from graam_pbx.sandbox.ports import free_port
from graam_pbx.sandbox.postgres import EmbeddedPostgres, EmbeddedPostgresConfig
from graam_pbx.settings import Settings

AGENTS, QUEUES, DIDS = 20, 3, 5
HA1 = "0123456789abcdef0123456789abcdef"
# The bench's Asterisk and phone, each on a loopback address of its own.
ASTERISK_IP, PHONE_IP = "127.0.0.171", "127.0.0.172"
WATCHED_QUEUES = ("pjsip/distributor", "pjsip/options/manage")
INTRODUCTIONS = 5
REALTIME_KEYS = (
    "realtime_change_p50_ms",
    "realtime_change_p99_ms",
    "register_unchanged_p50_ms",
    "register_unchanged_p99_ms",
    "introduce_device_p50_ms",
    "introduce_device_max_ms",
)


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
    """The largest queue seen until ``stop`` of PJSIP's request and management queues.

    Only those are listed (``like``): with realtime AORs PJSIP keeps one serializer per AOR,
    and a listing of 200,000 of them four times a second would be the load measured.
    """
    peak = 0
    while not stop.is_set():
        for name in WATCHED_QUEUES:
            output = await ami.command(f"core show taskprocessors like {name}", timeout=600)
            for line in output.splitlines():
                fields = line.split()
                if len(fields) >= 5 and fields[1].isdigit() and fields[2].isdigit():
                    peak = max(peak, int(fields[2]))
        await asyncio.sleep(0.25)
    return peak


async def timed_reload(
    ami: AmiSupervisor, command: str, deadline: float, wait_for: str | None = None
) -> tuple[float | None, int]:
    """Seconds Asterisk took (None past ``deadline``) and the largest queue seen meanwhile.

    ``wait_for``: an AOR whose presence in PJSIP's qualify says res_pjsip's background
    synchronization is all there (there is no event for "reload finished", so Asterisk's CLI
    is polled, with ``pjsip show qualify aor``: one lookup, where ``pjsip show aor`` reads
    the AOR from Postgres).
    """
    stop = asyncio.Event()
    watcher = asyncio.create_task(taskprocessor_peak(ami, stop))
    started = time.perf_counter()

    async def run() -> None:
        await ami.command(command, timeout=deadline)
        while wait_for is not None and not _aor_loaded(  # noqa: ASYNC110
            await ami.command(f"pjsip show qualify aor {wait_for}", timeout=deadline), wait_for
        ):
            await asyncio.sleep(0.1)

    try:
        await asyncio.wait_for(run(), deadline)
        took: float | None = time.perf_counter() - started
    except (TimeoutError, AmiError):
        took = None
    stop.set()
    try:
        peak = await asyncio.wait_for(watcher, 5)
    except (TimeoutError, AmiError):
        peak = -1  # Asterisk too busy to answer the listing
    return took, peak


# The bench's node: its Asterisk sandbox keeps the default systemname, which names it to the
# SIP views (graam.node).
BENCH_NODE, BENCH_SYSTEMNAME = "bench", "graam"


async def place(url: str, nodes: int) -> list[int]:
    """Register ``nodes`` nodes (the bench's first) and place one tenant in ``nodes`` on
    each, round robin; the bench node's tenants. One node: no node table rows at all, every
    tenant held (as a deployment of one Asterisk)."""
    conn = await asyncpg.connect(url)
    try:
        tenant_ids = [r["id"] for r in await conn.fetch("SELECT id FROM tenants ORDER BY id")]
        if nodes <= 1:
            return tenant_ids
        await conn.copy_records_to_table(
            "asterisk_nodes",
            columns=[
                "name",
                "systemname",
                "ami_host",
                "ami_port",
                "ami_username",
                "ami_secret",
                "sip_host",
                "sip_port",
                "state",
                "version",
            ],
            records=[
                (
                    BENCH_NODE if n == 0 else f"node{n}",
                    BENCH_SYSTEMNAME if n == 0 else f"node{n}",
                    "127.0.0.1",
                    5038,
                    "bench",
                    "unused",
                    "127.0.0.1",
                    5060,
                    "active",
                    1,
                )
                for n in range(nodes)
            ],
        )
        node_ids = [r["id"] for r in await conn.fetch("SELECT id FROM asterisk_nodes ORDER BY id")]
        await conn.copy_records_to_table(
            "tenant_placements",
            columns=["tenant_id", "node_id"],
            records=[(t, node_ids[i % nodes]) for i, t in enumerate(tenant_ids)],
        )
    finally:
        await conn.close()
    return tenant_ids[::nodes]


async def main(
    tenants: int,
    changes: int,
    reload_deadline: float,
    dialplan_only: bool = False,
    nodes: int = 1,
) -> dict[str, object]:
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
        held = await place(url, nodes)
        # The setup's own writes are flushed first, so the disk is not busy with them below.
        conn = await asyncpg.connect(url)
        await conn.execute("CHECKPOINT")
        await conn.close()
        await asyncio.to_thread(os.sync)
        engine = create_engine(url, pool_size=2)
        # The collector as the running control plane sets it once started (graam_pbx/heap.py).
        heap.settle_after_startup()
        config_dir = work / "graam"
        applier = ConfigApplier(engine, config_dir, node=BENCH_NODE if nodes > 1 else None)
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
        timings = []
        for i in range(changes):
            tenant = random.choice(held)
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

        # Asterisk's own reload times at this size, from the generated files, on the
        # bench's own Asterisk and loopback addresses.
        sandbox = AsteriskSandbox(
            AsteriskSandboxConfig(
                rootfs=Settings().asterisk_rootfs,
                state_dir=work / "asterisk",
                ami_port=free_port(),
                ami_username="bench",
                sip_bind=ASTERISK_IP,
                sip_port=free_port(socket.SOCK_DGRAM),
                systemname=BENCH_SYSTEMNAME,
            )
        )
        info = await sandbox.start()
        shutil.copytree(config_dir, info.config_dir, dirs_exist_ok=True)
        bus = EventBus()
        await bus.start()
        ami = AmiSupervisor(
            ami_config(info, ping_interval=600, ping_timeout=600, action_timeout=600), bus
        )
        await ami.start()
        await ami.wait_connected(30)
        # Devices are read from the bench database (docs/realtime-sip.md): Asterisk connects
        # with the generated res_pgsql.conf just copied; res_pjsip's reload then synchronizes
        # PJSIP's qualify with every realtime AOR, as the applier's first pass does.
        await ami.command("module reload res_config_pgsql.so", timeout=60)
        pjsip_s: float | None = None
        pjsip_peak = -1
        if not dialplan_only:
            pjsip_s, pjsip_peak = await timed_reload(
                ami,
                "module reload res_pjsip.so",
                reload_deadline,
                f"tenant{max(held)}-a{AGENTS - 1}",
            )
        target = Target(ASTERISK_IP, sandbox.config.sip_port, PHONE_IP, BENCH_SYSTEMNAME)
        reads = await endpoint_reads(url, target, 200)
        # Past the deadline Asterisk is still synchronizing: what follows would measure
        # that, so its keys are null (and the run stays bounded).
        realtime: dict[str, float | None] = dict.fromkeys(REALTIME_KEYS)
        dialplan_s: float | None = None
        dialplan_peak = -1
        if dialplan_only:
            dialplan_s, dialplan_peak = await timed_reload(ami, "dialplan reload", reload_deadline)
        elif pjsip_s is not None:
            registers = await device_changes(engine, url, work, target, changes)
            introduced = await introductions(url, target, ami, INTRODUCTIONS)
            realtime.update(
                realtime_change_p50_ms=registers["change"]["p50"],
                realtime_change_p99_ms=registers["change"]["p99"],
                register_unchanged_p50_ms=registers["unchanged"]["p50"],
                register_unchanged_p99_ms=registers["unchanged"]["p99"],
                introduce_device_p50_ms=introduced["p50"],
                introduce_device_max_ms=introduced["max"],
            )
            # Last: at 10,000 tenants Asterisk's dialplan load may outlast the deadline.
            dialplan_s, dialplan_peak = await timed_reload(ami, "dialplan reload", reload_deadline)
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
            "dialplan_reload_s": None if dialplan_s is None else round(dialplan_s, 3),
            "reload_deadline_s": reload_deadline,
            "pjsip_reload_s": None if pjsip_s is None else round(pjsip_s, 3),
            "realtime_endpoints": tenants * AGENTS,
            "nodes": nodes,
            "node_tenants": len(held),
            "node_endpoints": reads["rows"],
            **realtime,
            "endpoint_select_p50_ms": reads["one_p50"],
            "endpoint_select_all_ms": reads["all"],
            "taskprocessor_peak_queue": {"dialplan": dialplan_peak, "pjsip": pjsip_peak},
        }
    finally:
        if sandbox is not None:
            await sandbox.stop()
        await pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100 tenants, 20 changes")
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument(
        "--reload-deadline",
        type=float,
        default=300,
        help="seconds each Asterisk reload may take (dialplan_reload_s is null past it)",
    )
    parser.add_argument(
        "--dialplan-only",
        action="store_true",
        help="only the dialplan's reload: no PJSIP reload, no realtime case",
    )
    parser.add_argument(
        "--nodes",
        type=int,
        default=1,
        help="tenants spread over this many nodes, the bench's Asterisk holding one share",
    )
    args = parser.parse_args()
    tenants = 100 if args.quick else args.tenants
    changes = 20 if args.quick else 100
    print(
        json.dumps(
            asyncio.run(
                main(tenants, changes, args.reload_deadline, args.dialplan_only, args.nodes)
            )
        )
    )
