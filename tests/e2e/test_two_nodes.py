"""One control plane driving two real Asterisk nodes: each tenant's actions, calls and CDRs on
its own node.

Node ``local`` is the session's Asterisk (the app registered it at start, systemname
``graam``); node ``nodeb`` is a second sandbox on 127.0.0.161, registered through the API.
Both read phones from the session's database through realtime SIP (their registrations go to
``ps_contacts`` with the node's systemname as ``reg_server``). Tenant A lives on ``local``,
tenant B is placed on ``nodeb``. ``nodeb`` starts with the project's base configuration
only: the app writes it its tenants' files (through ``GRAAM_NODES_FILES_DIR``, here linked
to the sandbox's own directories) and reloads it, and removes them from the node they left.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami import AmiSupervisor
from graam_pbx.ami import actions as ami_actions
from graam_pbx.asterisk.nodes import CONFIG_SUBDIR, SOUNDS_SUBDIR
from graam_pbx.cluster.nodes import LOCAL_NODE
from graam_pbx.cluster.supervisors import NodeSupervisors
from graam_pbx.recordings.worker import NODE_SUBDIR as RECORDINGS_SUBDIR
from graam_pbx.sandbox.asterisk import (
    BASE_CONF_DIR,
    GENERATED_SUBDIR,
    AsteriskSandbox,
)
from tests.conftest import RunningApp
from tests.e2e.phones import reachable_phone
from tests.e2e.sipp import SippPool
from tests.e2e.test_calls import PHONES_IP, created, new_agent, new_device
from tests.e2e.test_recordings_direct import recording_rule, registered_recordings, speaking_phone
from tests.factories import TenantWorld, make_world
from tests.second_node import second_node
from tests.waiting import until

Sessions = async_sessionmaker[AsyncSession]
NODE_B_IP = "127.0.0.161"
NODE_B = "nodeb"
LOCAL_SYSTEMNAME = "graam"
Devices = tuple[dict[str, Any], dict[str, Any]]


@dataclass
class World:
    a: TenantWorld
    b: TenantWorld
    queue_a: dict[str, Any]
    queue_b: dict[str, Any]
    calls_a: Devices  # a caller and a callee of tenant A, in its dialplan on local
    calls_b: Devices  # of tenant B, in the dialplan the app wrote to nodeb
    sandbox: AsteriskSandbox
    sip_port: int
    ami: AmiSupervisor  # the app's connection to nodeb


async def _queue_with(
    client: httpx.AsyncClient, world: TenantWorld, user_ids: list[int]
) -> dict[str, Any]:
    queue = await created(
        await client.post("/api/v1/queues", headers=world.admin.headers, json={"name": "q"})
    )
    for user_id in user_ids:
        await created(
            await client.post(
                f"/api/v1/queues/{queue['id']}/members",
                headers=world.supervisor.headers,
                json={"user_id": user_id},
            )
        )
    return queue


@pytest.fixture(scope="module")
async def two_nodes(pbx: RunningApp) -> AsyncIterator[World]:
    client = pbx.client
    sessions: Sessions = pbx.app.state.sessions
    nodes = pbx.app.state.nodes
    assert isinstance(nodes, NodeSupervisors)
    a = await make_world(client, sessions)
    b = await make_world(client, sessions)
    queue_a = await _queue_with(client, a, [a.agent.user_id])
    queue_b = await _queue_with(client, b, [b.agent.user_id])
    calls_a = await _two_phones(client, a, ("501", "502"))
    calls_b = await _two_phones(client, b, ("601", "602"))
    appliers = pbx.runtime.appliers
    assert appliers is not None
    # nodeb's configuration: the project's base only; the app writes the rest.
    root = Path(tempfile.mkdtemp(prefix="graam-two-nodes-"))
    base = root / "conf"
    shutil.copytree(BASE_CONF_DIR, base, ignore=shutil.ignore_patterns("templates"))
    try:
        # The second Asterisk never outlives the module, whatever the clean-up below meets.
        async with second_node(root / "node", NODE_B_IP, NODE_B, base_conf_dir=base) as (
            sandbox,
            info,
        ):
            sip_port = sandbox.config.sip_port
            try:
                files = pbx.runtime.settings.nodes_files_dir
                assert files is not None
                (files / NODE_B).mkdir(parents=True)
                (files / NODE_B / CONFIG_SUBDIR).symlink_to(info.config_dir)
                (files / NODE_B / SOUNDS_SUBDIR).symlink_to(sandbox.sounds_dir)
                # Its recordings spool, as a mount of its monitor spool would show it.
                (files / NODE_B / RECORDINGS_SUBDIR).symlink_to(sandbox.recordings_spool())
                body = {
                    "name": NODE_B,
                    "systemname": NODE_B,
                    "ami_host": "127.0.0.1",
                    "ami_port": info.ami_port,
                    "ami_username": info.ami_username,
                    "ami_secret": info.ami_secret,
                    "sip_host": NODE_B_IP,
                    "sip_port": sip_port,
                }
                await created(
                    await client.post("/api/v1/nodes", headers=a.operator.headers, json=body)
                )
                placed = await client.put(
                    f"/api/v1/tenants/{b.tenant_id}/placement",
                    headers=a.operator.headers,
                    json={"node": NODE_B},
                )
                assert placed.status_code == 200, placed.text

                async def connected() -> bool:
                    supervisor = nodes.get(NODE_B)
                    return supervisor is not None and supervisor.state.connected

                await until(connected, "the app logged in to nodeb", 30)
                ami = nodes.get(NODE_B)
                assert ami is not None

                async def applier_of_nodeb() -> bool:
                    nodes.request()
                    return appliers.of_node(NODE_B) is not None

                await until(applier_of_nodeb, "an applier writing nodeb's files", 30)
                await appliers.settled()
                yield World(a, b, queue_a, queue_b, calls_a, calls_b, sandbox, sip_port, ami)
            finally:
                async with sessions.begin() as session:
                    # Every placement on nodeb (tenants the tests placed or moved there, and
                    # those created while it was the least loaded node).
                    await session.execute(
                        text(
                            "DELETE FROM tenant_placements WHERE :n IN (SELECT name"
                            " FROM asterisk_nodes WHERE id IN (node_id, standby_node_id))"
                        ),
                        {"n": NODE_B},
                    )
                    await session.execute(
                        text("DELETE FROM asterisk_nodes WHERE name = :n"), {"n": NODE_B}
                    )
                nodes.request()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def sipp_b(tmp_path: Path, two_nodes: World) -> AsyncIterator[SippPool]:
    """sipp phones that register with nodeb."""
    pool = SippPool(tmp_path / "b", f"{NODE_B_IP}:{two_nodes.sip_port}")
    yield pool
    await pool.close()


async def _place(
    client: httpx.AsyncClient,
    two_nodes: World,
    tenant_id: int,
    node: str,
    standby: str | None = None,
) -> None:
    """Place (or move) a tenant through the operator's API."""
    body = {"node": node} if standby is None else {"node": node, "standby": standby}
    response = await client.put(
        f"/api/v1/tenants/{tenant_id}/placement", headers=two_nodes.a.operator.headers, json=body
    )
    assert response.status_code == 200, response.text


async def _members(ami: AmiSupervisor, queue: str) -> set[str]:
    return {
        event.get("Location") or event.get("Interface") or ""
        for event in await ami_actions.queue_status(ami, queue)
        if event.name == "QueueMember"
    }


async def _reg_servers(sessions: Sessions, sip_username: str) -> set[str]:
    async with sessions() as session:
        rows = await session.scalars(
            text("SELECT reg_server FROM ps_contacts WHERE endpoint = :e"), {"e": sip_username}
        )
        return {str(row) for row in rows}


@contextlib.asynccontextmanager
async def _login_from_nodeb(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    two_nodes: World,
    sipp_b: SippPool,
    world: TenantWorld,
    extension: str,
    before_login: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[tuple[dict[str, Any], httpx.Response]]:
    """A new device of ``world`` registered with nodeb (its phone up until the block ends),
    and the answer to its agent's login from it (after ``before_login``)."""
    device = await new_device(client, world, extension)
    phone = await reachable_phone(two_nodes.ami, pbx.runtime.bus, sipp_b, device, node=NODE_B)
    try:
        assert await _reg_servers(sessions, device["sip_username"]) == {NODE_B}
        if before_login is not None:
            await before_login()
        response = await client.post(
            f"/api/v1/agents/{world.agent.user_id}/session",
            headers=world.agent.headers,
            json={"device_id": device["id"]},
        )
        yield device, response
    finally:
        await phone.stop()


async def test_an_agent_of_a_tenant_on_nodeb_is_a_member_on_nodeb_only(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    two_nodes: World,
    sipp_b: SippPool,
) -> None:
    b = two_nodes.b
    logging_in = _login_from_nodeb(pbx, client, sessions, two_nodes, sipp_b, b, "401")
    async with logging_in as (device, response):
        assert response.status_code in (200, 201), response.text
        worker = pbx.runtime.agents
        assert worker is not None
        await worker.settled()
        queue = f"t{b.tenant_id}-q{two_nodes.queue_b['id']}"
        location = f"PJSIP/{device['sip_username']}"

        async def member_on_nodeb() -> bool:
            return location in await _members(two_nodes.ami, queue)

        await until(member_on_nodeb, "the member added on nodeb", 20)
        assert location not in await _members(pbx.runtime.ami, queue)


async def test_a_login_from_a_phone_registered_on_another_node_is_refused(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    two_nodes: World,
    sipp_b: SippPool,
) -> None:
    # A phone registers only with a node that holds its tenant (the SIP views list no other
    # device): a tenant registered on nodeb and then moved to local is how a phone comes to
    # be registered on another node than its tenant's, until its registration expires.
    c = await make_world(client, sessions)
    await _place(client, two_nodes, c.tenant_id, NODE_B)
    logging_in = _login_from_nodeb(
        pbx,
        client,
        sessions,
        two_nodes,
        sipp_b,
        c,
        "402",
        before_login=lambda: _place(client, two_nodes, c.tenant_id, LOCAL_NODE),
    )
    async with logging_in as (_, response):
        assert response.status_code == 409, response.text
        body = response.json()
        assert body["error_id"] == "tenant-on-other-node"
        assert body["details"]["field"] == "body.device_id"
        assert body["details"]["reason"]
        assert body["details"]["tenant_node"] == LOCAL_NODE
        async with sessions() as session:
            live = await session.scalar(
                text(
                    "SELECT count(*) FROM agent_sessions WHERE tenant_id = :t AND ended_at IS NULL"
                ),
                {"t": c.tenant_id},
            )
        assert live == 0


async def _call_between(
    pbx: RunningApp, devices: Devices, node: str, ami: AmiSupervisor, sipp: SippPool
) -> None:
    """A phone calls another phone of its tenant, both registered with ``sipp``'s node."""
    caller, callee = devices
    callee_phone = await reachable_phone(ami, pbx.runtime.bus, sipp, callee, node=node)
    call = await sipp.uac(
        "uac_call.xml",
        ip=PHONES_IP,
        service=callee["extension"],
        auth=(caller["sip_username"], caller["password"]),
        keys={"caller": caller["sip_username"]},
    ).run()
    assert call.ok, call.describe()
    answered = await callee_phone.wait()
    assert answered.ok, answered.describe()


async def _two_phones(
    client: httpx.AsyncClient, world: TenantWorld, extensions: tuple[str, str]
) -> Devices:
    caller = await new_device(client, world, extensions[0], await new_agent(client, world))
    callee = await new_device(client, world, extensions[1], await new_agent(client, world))
    return caller, callee


async def test_each_tenants_calls_go_through_its_node_and_both_nodes_cdrs_are_written(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    two_nodes: World,
    sipp: SippPool,
    sipp_b: SippPool,
) -> None:
    a, b = two_nodes.a, two_nodes.b
    await _call_between(pbx, two_nodes.calls_a, LOCAL_NODE, pbx.runtime.ami, sipp)
    await _call_between(pbx, two_nodes.calls_b, NODE_B, two_nodes.ami, sipp_b)

    async def cdrs_of_both() -> bool:
        rows = await _cdrs(sessions, {a.tenant_id, b.tenant_id})
        return {tenant for tenant, _, _ in rows} == {a.tenant_id, b.tenant_id}

    await until(cdrs_of_both, "CDRs of both tenants", 30)
    rows = await _cdrs(sessions, {a.tenant_id, b.tenant_id})
    keys = [(system, uniqueid) for _, system, uniqueid in rows]
    assert len(keys) == len(set(keys)), rows
    for tenant, system, uniqueid in rows:
        expected = LOCAL_SYSTEMNAME if tenant == a.tenant_id else NODE_B
        assert system == expected, rows
        assert uniqueid.startswith(f"{expected}-"), rows


async def _cdrs(sessions: Sessions, tenants: set[int]) -> list[tuple[int, str, str]]:
    async with sessions() as session:
        rows = await session.execute(
            text(
                "SELECT tenant_id, system_name, uniqueid FROM cdrs"
                " WHERE tenant_id = ANY(:t) ORDER BY id"
            ),
            {"t": list(tenants)},
        )
        return [(int(t), str(s), str(u)) for t, s, u in rows.all()]


def _tenant_files(config_dir: Path, tenant_id: int) -> bool:
    return (config_dir / "tenants" / f"t{tenant_id}" / "extensions.conf").exists()


async def test_each_node_holds_its_tenants_files_and_a_moved_tenants_files_follow(
    pbx: RunningApp, client: httpx.AsyncClient, sessions: Sessions, two_nodes: World
) -> None:
    local_dir = pbx.runtime.applier.config_dir if pbx.runtime.applier else None
    appliers = pbx.runtime.appliers
    assert local_dir is not None and appliers is not None
    nodeb_dir = two_nodes.sandbox.etc_dir / GENERATED_SUBDIR
    a, b = two_nodes.a, two_nodes.b
    await appliers.settled()
    assert _tenant_files(local_dir, a.tenant_id) and not _tenant_files(nodeb_dir, a.tenant_id)
    assert _tenant_files(nodeb_dir, b.tenant_id) and not _tenant_files(local_dir, b.tenant_id)

    c = await make_world(client, sessions)

    async def files_are(on_local: bool, on_nodeb: bool) -> bool:
        await appliers.settled()
        return (
            _tenant_files(local_dir, c.tenant_id) == on_local
            and _tenant_files(nodeb_dir, c.tenant_id) == on_nodeb
        )

    await _place(client, two_nodes, c.tenant_id, NODE_B)
    await until(lambda: files_are(False, True), "tenant C's files on nodeb only", 30)
    await _place(client, two_nodes, c.tenant_id, LOCAL_NODE, standby=NODE_B)
    await until(lambda: files_are(True, True), "C on local, nodeb standing by", 30)
    await _place(client, two_nodes, c.tenant_id, LOCAL_NODE)
    await until(lambda: files_are(True, False), "C's files on local only", 30)
    # The move's generation is recorded by the node the tenant lives on.
    status = await client.get("/api/v1/config/status", headers=c.admin.headers)
    assert status.status_code == 200, status.text
    assert status.json()["pending"] is False, status.json()


async def test_a_node_lists_only_the_devices_of_the_tenants_it_holds(
    client: httpx.AsyncClient, sessions: Sessions, two_nodes: World
) -> None:
    """What nodeb's realtime connection sees: its tenants' devices, not tenant A's."""
    a, b = two_nodes.a, two_nodes.b
    ours = {device["sip_username"] for device in two_nodes.calls_b}
    theirs = {device["sip_username"] for device in two_nodes.calls_a}
    async with sessions() as session, session.begin():
        await session.execute(text("SELECT set_config('graam.node', :n, true)"), {"n": NODE_B})
        listed = set((await session.scalars(text("SELECT id FROM ps_endpoints"))).all())
        auths = set((await session.scalars(text("SELECT id FROM ps_auths"))).all())
        aors = set((await session.scalars(text("SELECT id FROM ps_aors"))).all())
    for seen in (listed, auths, aors):
        assert ours <= seen and not theirs & seen, (a.tenant_id, b.tenant_id)


async def test_a_moved_tenants_logged_in_agent_is_a_member_on_its_new_node(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    two_nodes: World,
    sipp: SippPool,
) -> None:
    d = await make_world(client, sessions)
    await _place(client, two_nodes, d.tenant_id, LOCAL_NODE)
    queue = await _queue_with(client, d, [d.agent.user_id])
    device = await new_device(client, d, "403")
    appliers = pbx.runtime.appliers
    assert appliers is not None
    await appliers.settled()
    phone = await reachable_phone(pbx.runtime.ami, pbx.runtime.bus, sipp, device, node=LOCAL_NODE)
    try:
        login = await client.post(
            f"/api/v1/agents/{d.agent.user_id}/session",
            headers=d.agent.headers,
            json={"device_id": device["id"]},
        )
        assert login.status_code in (200, 201), login.text
        name = f"t{d.tenant_id}-q{queue['id']}"
        location = f"PJSIP/{device['sip_username']}"

        async def member_on(ami: AmiSupervisor, present: bool) -> bool:
            return (location in await _members(ami, name)) == present

        await until(lambda: member_on(pbx.runtime.ami, True), "the member on local", 20)
        await _place(client, two_nodes, d.tenant_id, NODE_B)
        await until(lambda: member_on(two_nodes.ami, True), "the member on nodeb", 30)
        await until(lambda: member_on(pbx.runtime.ami, False), "no member left on local", 30)
    finally:
        await phone.stop()


async def test_a_call_recorded_on_nodeb_is_taken_from_its_spool_and_served(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    two_nodes: World,
    sipp_b: SippPool,
    tmp_path: Path,
) -> None:
    """Tenant B (on nodeb) records its internal calls: nodeb's MixMonitor writes the file in
    nodeb's spool, and the control plane takes it from <GRAAM_NODES_FILES_DIR>/nodeb/recordings
    into the one store, from which the API serves it."""
    b = two_nodes.b
    await recording_rule(client, b, direction="internal", mode="always")
    appliers = pbx.runtime.appliers
    assert appliers is not None
    await appliers.settled()
    caller, callee = two_nodes.calls_b
    # The called phone answers, talks five seconds and hangs up; the caller speaks a tone.
    await reachable_phone(
        two_nodes.ami, pbx.runtime.bus, sipp_b, callee, "uas_answer_talk_long.xml", node=NODE_B
    )
    call = await speaking_phone(sipp_b, tmp_path, caller, callee["extension"]).start()
    ended = await call.wait()
    assert ended.ok, ended.describe()

    (recording,) = await registered_recordings(sessions, b.tenant_id, 1)
    assert recording.uniqueid.startswith(f"{NODE_B}-"), recording.uniqueid  # nodeb's channel
    assert recording.direction == "internal"
    assert not list(two_nodes.sandbox.recordings_spool().rglob("*.wav"))  # taken from its spool
    audio = await client.get(f"/api/v1/recordings/{recording.id}/audio", headers=b.admin.headers)
    assert audio.status_code == 200, audio.text
    assert hashlib.sha256(audio.content).hexdigest() == recording.sha256
