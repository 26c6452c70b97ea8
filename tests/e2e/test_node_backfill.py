"""A call that ends on a second node while the control plane is stopped: its CDRs and its queue
call come back from that node's own logs when the control plane starts again, each once.

The control plane (the app with every writer, role ``all``) runs on a database of this test's
own, with the session's Asterisk as its configured node, whose logs it is not given: only the
second node's are read back. The second node is a sandbox of its own on 127.0.0.191,
registered through the API, holding the test's tenant; its log directory
(``/var/log/asterisk``) is seen by the control plane as ``<GRAAM_NODES_FILES_DIR>/<node>/log``
(here a link to the sandbox's). The test writes the node a queue (no agent: a caller waits
one second and leaves, EXITWITHTIMEOUT) and a dialplan context that queues the callee leg of
an ``Originate``.

A first call ends while the control plane runs (written live), then the control plane stops,
a second call ends on the node, and the control plane starts again: the second call's CDRs and
queue call are written from the node's logs, the first call's (read again: the node's
checkpoint never passed them) are not doubled, and every CDR carries the node's systemname.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from graam_pbx.ami import AmiConfig, AmiSupervisor, EventBus
from graam_pbx.app import Endpoints
from graam_pbx.cdr.backfill import LOG_NAME
from graam_pbx.cdr.journal import Checkpoint
from graam_pbx.cdr.node_logs import LOG_SUBDIR, NODES_SUBDIR
from graam_pbx.cdr.worker import CHECKPOINT_NAME
from graam_pbx.cluster.supervisors import NodeSupervisors
from graam_pbx.db import migrate, plain_url
from graam_pbx.queue_calls.worker import LOG_NAME as QUEUE_LOG_NAME
from graam_pbx.sandbox.asterisk import (
    GENERATED_SUBDIR,
    AsteriskSandbox,
    SandboxInfo,
)
from graam_pbx.sandbox.ports import free_port
from graam_pbx.sandbox.postgres import EmbeddedPostgres
from graam_pbx.settings import Settings
from tests.conftest import Asterisk, RunningApp, create_database, drop_database, start_app
from tests.e2e.test_calls import created
from tests.factories import make_world
from tests.second_node import second_node
from tests.waiting import until

NODE_B_IP = "127.0.0.191"  # reserved for this test
NODE_B = "nodebf"  # its name and its systemname
CONTEXT = "node-backfill-test"
QUEUE_SECONDS = 1  # the caller waits this long in a queue with no member, then leaves


@pytest.fixture
async def own_database(postgres: EmbeddedPostgres) -> AsyncIterator[str]:
    name = f"t_node_backfill_{uuid.uuid4().hex[:6]}"
    await create_database(postgres.url(), name)
    url = postgres.url(name)
    await migrate(url)
    yield url
    await drop_database(postgres.url(), name)


@dataclass
class NodeB:
    sandbox: AsteriskSandbox
    info: SandboxInfo
    ami: AmiSupervisor  # the test's own connection: it places calls while no app runs

    @property
    def csv_log(self) -> Path:
        return self.sandbox.log_dir / LOG_NAME

    @property
    def queue_log(self) -> Path:
        return self.sandbox.log_dir / QUEUE_LOG_NAME


@pytest.fixture
async def node_b(tmp_path: Path) -> AsyncIterator[NodeB]:
    root = Path(tempfile.mkdtemp(prefix="graam-node-backfill-"))
    try:
        async with second_node(root / "node", NODE_B_IP, NODE_B) as (sandbox, info):
            config = AmiConfig.from_settings(
                Settings(
                    ami_host="127.0.0.1",
                    ami_port=info.ami_port,
                    ami_username=info.ami_username,
                    ami_secret=info.ami_secret,
                    ami_backoff_max=0.5,
                )
            )
            ami = AmiSupervisor(config, EventBus())
            await ami.start()
            try:
                await ami.wait_connected(timeout=30)
                yield NodeB(sandbox, info, ami)
            finally:
                await ami.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def _give_node_a_queue(node: NodeB, queue: str) -> None:
    """A queue and a context that queues whoever enters it, in the node's generated files."""
    generated = node.sandbox.etc_dir / GENERATED_SUBDIR
    with (generated / "queues.conf").open("a") as out:
        out.write(f"\n[{queue}]\nstrategy = ringall\n")
    with (generated / "extensions.conf").open("a") as out:
        out.write(
            f"\n[{CONTEXT}]\n"
            f"exten => s,1,Answer()\n"
            f" same => n,Queue({queue},,,,{QUEUE_SECONDS})\n"
            f" same => n,Hangup()\n"
        )
    for command in ("module reload app_queue.so", "dialplan reload"):
        await node.ami.action("Command", {"Command": command})

    async def loaded() -> bool:
        answer = await node.ami.action("Command", {"Command": f"queue show {queue}"})
        return "No such queue" not in str(answer.fields)

    await until(loaded, f"queue {queue} loaded on {NODE_B}", 20)


async def _call(node: NodeB, tenant_id: int) -> tuple[str, str]:
    """A call on the node whose callee leg waits in the queue, then ends; its two uniqueids
    (the callee leg's is the queue caller's). Returns once both logs have it."""
    stamp = f"{time.time():.6f}"
    ids = (f"{NODE_B}-{stamp}.1", f"{NODE_B}-{stamp}.2")
    await node.ami.action(
        "Originate",
        {
            "Channel": f"Local/s@{CONTEXT}/n",
            "Application": "Wait",
            "Data": "10",
            "Async": "true",
            "Account": f"t{tenant_id}",
            "ChannelId": ids[0],
            "OtherChannelId": ids[1],
        },
    )

    def logged(path: Path, *needles: str) -> bool:
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            return False
        return all(needle in text for needle in needles)

    async def ended() -> bool:
        return logged(node.csv_log, *ids) and logged(node.queue_log, f"{ids[1]}|", "EXITWITH")

    await until(ended, "the call's CDRs and queue exit in the node's logs", 30)
    return ids


async def _rows(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(plain_url(url))
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


async def _cdrs(url: str, ids: list[str]) -> list[asyncpg.Record]:
    return await _rows(
        url,
        "SELECT system_name, uniqueid, sequence, tenant_id, source FROM cdrs"
        " WHERE uniqueid = ANY($1::text[])",
        ids,
    )


async def _queue_calls(url: str, callers: list[str]) -> list[asyncpg.Record]:
    return await _rows(
        url,
        "SELECT caller_uniqueid, tenant_id, outcome FROM queue_calls"
        " WHERE caller_uniqueid = ANY($1::text[])",
        callers,
    )


async def test_a_call_ended_on_another_node_while_the_control_plane_was_stopped_is_written_once(
    asterisk: Asterisk, own_database: str, node_b: NodeB, tmp_path: Path
) -> None:
    files = tmp_path / "node-files"
    (files / NODE_B).mkdir(parents=True)
    (files / NODE_B / LOG_SUBDIR).symlink_to(node_b.sandbox.log_dir)
    state = tmp_path / "state"
    endpoints = Endpoints(database_url=own_database, ami=asterisk.ami_config())

    def settings() -> Settings:
        return Settings(
            agi_port=free_port(),
            data_dir=state,
            cdr_dir=state / "cdr",
            queue_calls_dir=state / "queue-calls",
            nodes_files_dir=files,
            billing_interval=86_400,
            demo_seed=False,
        )

    control_plane = contextlib.asynccontextmanager(start_app)

    async def nodeb_connected(running: RunningApp) -> None:
        nodes = running.runtime.nodes
        assert isinstance(nodes, NodeSupervisors)

        async def connected() -> bool:
            nodes.request()
            supervisor = nodes.get(NODE_B)
            return supervisor is not None and supervisor.state.connected

        await until(connected, f"the control plane logged in to {NODE_B}", 30)

    # The control plane runs: the node registered, the tenant placed on it, a first call.
    async with control_plane(endpoints, settings()) as running:
        client = running.client
        world = await make_world(client, running.app.state.sessions)
        queue = await created(
            await client.post("/api/v1/queues", headers=world.admin.headers, json={"name": "q"})
        )
        queue_name = f"t{world.tenant_id}-q{queue['id']}"
        body = {
            "name": NODE_B,
            "systemname": NODE_B,
            "ami_host": "127.0.0.1",
            "ami_port": node_b.info.ami_port,
            "ami_username": node_b.info.ami_username,
            "ami_secret": node_b.info.ami_secret,
            "sip_host": NODE_B_IP,
            "sip_port": node_b.sandbox.config.sip_port,
        }
        await created(await client.post("/api/v1/nodes", headers=world.operator.headers, json=body))
        placed = await client.put(
            f"/api/v1/tenants/{world.tenant_id}/placement",
            headers=world.operator.headers,
            json={"node": NODE_B},
        )
        assert placed.status_code == 200, placed.text
        await nodeb_connected(running)
        await _give_node_a_queue(node_b, queue_name)

        live = await _call(node_b, world.tenant_id)

        async def live_written() -> bool:
            return (
                len(await _cdrs(own_database, list(live))) == 2
                and len(await _queue_calls(own_database, [live[1]])) == 1
            )

        await until(live_written, "the first call's CDRs and queue call", 30)

    # The control plane stopped: a call ends on the node.
    missed = await _call(node_b, world.tenant_id)
    assert not await _cdrs(own_database, list(missed))

    # Started again: the node's logs are read back from its checkpoints.
    async with control_plane(endpoints, settings()) as running:
        ids = [*live, *missed]

        async def all_written() -> bool:
            return (
                len(await _cdrs(own_database, ids)) >= len(ids)
                and len(await _queue_calls(own_database, [live[1], missed[1]])) >= 2
            )

        await until(all_written, "the missed call's CDRs and queue call", 60)
        # The node's backfill read its whole log (the first call again, ignored): its
        # checkpoint, its own, is at the log's end.
        checkpoint = state / "cdr" / NODES_SUBDIR / NODE_B / CHECKPOINT_NAME

        async def read_to_the_end() -> bool:
            known = Checkpoint.load(checkpoint)
            return known is not None and known.offset == node_b.csv_log.stat().st_size

        await until(read_to_the_end, f"{NODE_B}'s CSV log read to its end", 30)
        cdr = running.runtime.cdr
        assert cdr is not None and cdr.duplicates == 2  # the first call's, read again

        cdrs = await _cdrs(own_database, ids)
        keys = [(row["system_name"], row["uniqueid"], row["sequence"]) for row in cdrs]
        assert len(keys) == len(set(keys)) == 4, cdrs
        assert sorted(row["uniqueid"] for row in cdrs) == sorted(ids), cdrs
        assert {row["system_name"] for row in cdrs} == {NODE_B}, cdrs
        assert {row["tenant_id"] for row in cdrs} == {world.tenant_id}, cdrs
        assert {row["source"] for row in cdrs if row["uniqueid"] in missed} == {"csv"}, cdrs

        calls = await _queue_calls(own_database, [live[1], missed[1]])
        assert sorted(row["caller_uniqueid"] for row in calls) == sorted([live[1], missed[1]])
        assert {row["tenant_id"] for row in calls} == {world.tenant_id}, calls
