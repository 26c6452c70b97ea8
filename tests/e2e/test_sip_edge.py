"""The SIP edge: the shipped kamailio.cfg in front of two real Asterisk nodes, routing from the
real Postgres.

Everything listens on addresses of its own: node A on 127.0.0.131, node B on 127.0.0.132, the
edge on 127.0.0.133; phones and carriers send from 127.0.0.134-139. Tenant A lives on node A
with B as standby, tenant B on node B with A as standby (rows of this module's database).

Every node knows every phone through realtime SIP: both read the module's database (the views
of migration 0019; registrations go to ps_contacts, whose reg_server names the node that took
them). Each node runs the project's base configuration, which holds what docs/sip-edge.md
asks of nodes behind the edge (res_pjsip_path, the graam-edge endpoint for probes), and is
started behind the edge (its phones' endpoints keep their contacts: rewrite_contact=no from
the view); the test adds a carrier known by X-Graam-Source and a small dialplan. Which node
took a call is read from its answer (the Contact of its 200 OK). The edge reads the database
as a role of its own that may select the kamailio_* views only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents.models import AgentDevice
from graam_pbx.agents.service import sip_ha1
from graam_pbx.ami import AmiConfig
from graam_pbx.app import Endpoints
from graam_pbx.asterisk.realtime import given_database, res_pgsql_conf
from graam_pbx.auth.models import User
from graam_pbx.cluster.models import AsteriskNode, NodeState, TenantPlacement
from graam_pbx.db import create_engine, session_factory
from graam_pbx.numbers.models import PhoneNumber
from graam_pbx.sandbox import SandboxError
from graam_pbx.sandbox.asterisk import BASE_CONF_DIR, AsteriskSandbox, AsteriskSandboxConfig
from graam_pbx.sandbox.kamailio import KamailioConfig, KamailioSandbox, sip_options
from graam_pbx.sandbox.ports import free_port
from graam_pbx.settings import Settings
from graam_pbx.tenants.models import Tenant
from tests.conftest import RunningApp, start_app
from tests.e2e.sipp import (
    Sipp,
    SippPool,
    SippResult,
    free_udp_port,
    header,
    routed_phone_call,
)
from tests.factories import make_operator
from tests.waiting import until

NODE_IPS = {"a": "127.0.0.131", "b": "127.0.0.132"}
EDGE_IP = "127.0.0.133"
FLOOD_IP = "127.0.0.134"
PHONE_IPS = {"a": "127.0.0.135", "b": "127.0.0.136"}
CARRIER_IP = "127.0.0.137"
BYSTANDER_IP = "127.0.0.138"
UNUSED_NODE_IP = "127.0.0.139"  # a node row with nothing behind it
GUESSER_IP = "127.0.0.130"
PIKE_DENSITY = 50  # requests per source per 2 s: the flood passes it, a test's phones never do
AUTH_FAILURES = 5  # failed authentications of one source before the edge bans it
FAILOVER_SECONDS = 10  # the bound for a dead node's tenants to reach their standby

pytestmark = pytest.mark.usefixtures("_addresses")


@pytest.fixture(scope="module")
def _addresses() -> None:
    for ip in (
        *NODE_IPS.values(),
        EDGE_IP,
        FLOOD_IP,
        *PHONE_IPS.values(),
        CARRIER_IP,
        BYSTANDER_IP,
        GUESSER_IP,
    ):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((ip, 0))  # loopback is 127.0.0.0/8: fails loudly if not


@dataclass
class Phone:
    sip_username: str
    password: str


@dataclass
class EdgeTenant:
    key: str  # "a" or "b": its node
    tenant_id: int
    phone: Phone
    did: str  # E.164: the node answers it
    ring_did: str  # E.164: the node rings the tenant's phone


@dataclass
class Node:
    key: str
    sandbox: AsteriskSandbox
    sip_port: int
    node_id: int = 0

    @property
    def sip_host(self) -> str:
        return NODE_IPS[self.key]

    async def kill(self) -> None:
        """SIGKILL, as a crash: no goodbye to anyone."""
        pid = self.sandbox.running_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)

        async def gone() -> bool:
            return self.sandbox.running_pid() is None

        await until(gone, f"node {self.key} gone", 10)

    async def start(self) -> None:
        await self.sandbox.start()


@dataclass
class Edge:
    kamailio: KamailioSandbox
    port: int
    nodes: dict[str, Node]
    tenants: dict[str, EdgeTenant]
    sessions: async_sessionmaker[AsyncSession]

    @property
    def address(self) -> str:
        return f"{EDGE_IP}:{self.port}"

    async def node_alive_at_edge(self, key: str) -> bool:
        """The edge's dispatcher takes node ``key`` for active (flag A) right now."""
        flags = await self.dispatcher_flags()
        return flags.get(f"sip:{NODE_IPS[key]}:{self.nodes[key].sip_port}", "").startswith("A")

    async def dispatcher_flags(self) -> dict[str, str]:
        """Every destination the edge's dispatcher holds, with its flags (AP: active and
        probed, IP: inactive and probed)."""
        result = await self.kamailio.rpc("dispatcher.list")
        return {
            target["DEST"]["URI"]: target["DEST"]["FLAGS"]
            for record in result.get("RECORDS", [])
            for target in record["SET"].get("TARGETS", [])
        }

    async def set_state(self, key: str, state: NodeState) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(AsteriskNode)
                .where(AsteriskNode.id == self.nodes[key].node_id)
                .values(state=state.value)
            )


def _node_conf(base: Path, database_url: str, tenants: list[tuple[int, str, str]]) -> Path:
    """A copy of the project's base configuration with this test's generated files.

    Phones come from the module's database through realtime (the views of migration 0019), as
    on every node; the dialplan rings a tenant's phone at its first number and answers any
    other number, and answers every call of a phone. Carriers' calls are those the edge relays
    with the carrier's own address in X-Graam-Source.
    """
    shutil.copytree(BASE_CONF_DIR, base, ignore=shutil.ignore_patterns("templates"))
    (base / "graam/res_pgsql.conf").write_text(res_pgsql_conf(given_database(database_url)))
    pjsip = [
        "[edge-carrier](graam-trunk)",
        "type = endpoint",
        "context = edge-test",
        "disallow = all",
        "allow = ulaw,alaw",
        "direct_media = no",
        "identify_by = header",
        "",
        "[edge-carrier]",
        "type = identify",
        "endpoint = edge-carrier",
        f"match_header = X-Graam-Source: {CARRIER_IP}",
        "",
    ]
    dialplan = ["[edge-test]"]
    for _tenant_id, ring_did, sip_username in tenants:
        dialplan += [
            f"exten => {ring_did.lstrip('+')},1,Dial(PJSIP/{sip_username},20)",
            " same => n,Hangup()",
        ]
    answer = [
        "exten => _X.,1,Answer()",
        " same => n,Wait(30)",
        " same => n,Hangup()",
        "exten => _+X.,1,Goto(${CONTEXT},${EXTEN:1},1)",
    ]
    dialplan += answer
    for tenant_id, _ring_did, _sip_username in tenants:
        dialplan += ["", f"[t{tenant_id}-internal]", *answer]
    (base / "graam/pjsip.conf").write_text("\n".join(pjsip) + "\n")
    (base / "graam/extensions.conf").write_text("\n".join(dialplan) + "\n")
    return base


@pytest.fixture(scope="module")
async def edge(database_url: str) -> AsyncIterator[Edge]:
    # Outside pytest's numbered temp dirs, which another session on the machine rotates away.
    root = Path(tempfile.mkdtemp(prefix="graam-sip-edge-"))
    suffix = uuid.uuid4().hex[:6]
    phones = {
        key: Phone(f"edge{key}-{suffix}-phone", secrets.token_urlsafe(12)) for key in ("a", "b")
    }
    dids = {
        key: (f"+3319{index}{number:06d}", f"+3319{index}{number + 1:06d}")
        for index, key in enumerate("ab")
        for number in (secrets.randbelow(10**6 - 1),)
    }
    nodes: dict[str, Node] = {}
    for key, ip in NODE_IPS.items():
        sip_port = free_udp_port(ip)
        nodes[key] = Node(
            key=key,
            sip_port=sip_port,
            sandbox=AsteriskSandbox(
                AsteriskSandboxConfig(
                    rootfs=Settings().asterisk_rootfs,
                    state_dir=root / f"node-{key}",
                    ami_port=free_port(),
                    ami_username="graam-edge-test",
                    sip_bind=ip,
                    sip_port=sip_port,
                    systemname=f"edge-{key}-{suffix}",
                    base_conf_dir=root / "node-conf",
                    behind_edge=True,
                )
            ),
        )
    engine = create_engine(database_url, pool_size=2)
    sessions = session_factory(engine)
    kamailio: KamailioSandbox | None = None
    try:
        tenants = await _rows(sessions, nodes, phones, dids, suffix)
        _node_conf(
            root / "node-conf",
            database_url,
            [(t.tenant_id, t.ring_did, t.phone.sip_username) for t in tenants.values()],
        )
        try:
            await asyncio.gather(*(node.start() for node in nodes.values()))
        except SandboxError as err:
            pytest.fail(f"Asterisk sandbox unavailable: {err}")
        port = free_udp_port(EDGE_IP)
        edge_url = await _edge_role(sessions, database_url, suffix)
        kamailio = KamailioSandbox(
            KamailioConfig(
                state_dir=root / "edge",
                database_url=edge_url,
                sip_address=EDGE_IP,
                sip_port=port,
                pike_density=PIKE_DENSITY,
                auth_failures=AUTH_FAILURES,
            )
        )
        try:
            await kamailio.start()
        except SandboxError as err:
            pytest.fail(f"Kamailio unavailable: {err}")
        world = Edge(kamailio, port, nodes, tenants, sessions)
        for key in nodes:
            await until(partial(world.node_alive_at_edge, key), f"probe of node {key}", 15)
        yield world
    finally:
        if kamailio is not None:
            await kamailio.stop()
        for node in nodes.values():
            await node.sandbox.stop()
        async with sessions.begin() as session:
            await session.execute(text(f"drop owned by edge_{suffix}"))
            await session.execute(text(f"drop role if exists edge_{suffix}"))
        await engine.dispose()
        shutil.rmtree(root, ignore_errors=True)


async def _rows(
    sessions: async_sessionmaker[AsyncSession],
    nodes: dict[str, Node],
    phones: dict[str, Phone],
    dids: dict[str, tuple[str, str]],
    suffix: str,
) -> dict[str, EdgeTenant]:
    """Nodes, two tenants (each placed on its node, the other node its standby), a phone and a
    number each: the rows the edge routes by."""
    async with sessions.begin() as session:
        for key, node in nodes.items():
            row = AsteriskNode(
                name=f"edge-{key}-{suffix}",
                systemname=f"edge-{key}-{suffix}",
                ami_host="127.0.0.1",
                ami_port=node.sandbox.config.ami_port,
                ami_username="graam-edge-test",
                ami_secret=node.sandbox.secret(),
                sip_host=node.sip_host,
                sip_port=node.sip_port,
                state=NodeState.ACTIVE.value,
            )
            session.add(row)
            await session.flush()
            node.node_id = row.id
        tenants: dict[str, EdgeTenant] = {}
        for key, other in (("a", "b"), ("b", "a")):
            tenant = Tenant(
                slug=f"edge{key}-{suffix}",
                name=f"Edge {key}",
                country="FR",
                timezone="Europe/Paris",
            )
            session.add(tenant)
            await session.flush()
            user = User(
                tenant_id=tenant.id,
                email=f"agent@edge{key}-{suffix}.test",
                display_name="Agent",
                role="agent",
                password_hash="-",
            )
            session.add(user)
            await session.flush()
            session.add(
                AgentDevice(
                    tenant_id=tenant.id,
                    user_id=user.id,
                    sip_username=phones[key].sip_username,
                    password_ha1=sip_ha1(phones[key].sip_username, phones[key].password),
                    extension="100",
                    codecs=["ulaw"],
                )
            )
            for e164 in dids[key]:
                session.add(
                    PhoneNumber(
                        e164=e164,
                        country="FR",
                        number_type="geographic",
                        monthly_price=Decimal("1.0000"),
                        status="assigned",
                        tenant_id=tenant.id,
                    )
                )
            session.add(
                TenantPlacement(
                    tenant_id=tenant.id,
                    node_id=nodes[key].node_id,
                    standby_node_id=nodes[other].node_id,
                )
            )
            tenants[key] = EdgeTenant(key, tenant.id, phones[key], *dids[key])
    return tenants


async def _edge_role(
    sessions: async_sessionmaker[AsyncSession], database_url: str, suffix: str
) -> str:
    """The edge's own role, with SELECT on the kamailio_* objects only (docs/sip-edge.md):
    the edge works without reading any table of the control plane."""
    role, password = f"edge_{suffix}", secrets.token_hex(16)
    objects = "kamailio_dispatcher, kamailio_routes, kamailio_default_node, kamailio_version"
    async with sessions.begin() as session:
        database = await session.scalar(text("select current_database()"))
        for statement in (
            f"create role {role} login password '{password}'",
            f'grant connect on database "{database}" to {role}',
            f"grant select on {objects} to {role}",
        ):
            await session.execute(text(statement))
    return (
        make_url(database_url)
        .set(username=role, password=password)
        .render_as_string(hide_password=False)
    )


@pytest.fixture
async def sipp(tmp_path: Path, edge: Edge) -> AsyncIterator[SippPool]:
    pool = SippPool(tmp_path, edge.address)
    yield pool
    await pool.close()


async def register(
    sipp: SippPool, tenant: EdgeTenant, *, port: int | None = None, timeout: float = 15
) -> Sipp:
    phone = tenant.phone
    registering = sipp.uac(
        "register.xml",
        ip=PHONE_IPS[tenant.key],
        port=port,
        service=phone.sip_username,
        auth=(phone.sip_username, phone.password),
        timeout=timeout,
    )
    result = await registering.run()
    assert result.ok, result.describe()
    return registering


async def carrier_call(sipp: SippPool, number: str) -> SippResult:
    call = sipp.uac(
        "carrier_probe.xml",
        ip=CARRIER_IP,
        service=number,
        keys={"caller": "+33611223344", "extra": "Subject: edge"},
        timeout=FAILOVER_SECONDS + 5,
    )
    return await call.run()


async def phone_call(sipp: SippPool, tenant: EdgeTenant, *, timeout: float = 45) -> SippResult:
    """The tenant's phone calls a number its node answers."""
    phone = tenant.phone
    call = sipp.uac(
        str(routed_phone_call(sipp.workdir)),
        ip=PHONE_IPS[tenant.key],
        service="5000",
        auth=(phone.sip_username, phone.password),
        keys={"caller": phone.sip_username},
        timeout=timeout,
    )
    return await call.run()


def answering_node(result: SippResult, edge: Edge) -> str:
    """Which node answered the call: the host of the 200 OK's Contact."""
    texts = re.findall(
        r"message received \[\d+\] bytes ?:\n\n(SIP/2\.0 200.*?)(?=\n-{20,} |\Z)",
        result.messages,
        re.DOTALL,
    )
    invites = [t for t in texts if re.search(r"^CSeq:\s*\d+ INVITE", t, re.MULTILINE | re.I)]
    assert invites, result.describe()
    contact = header(invites[0], "Contact") or ""
    for key, ip in NODE_IPS.items():
        if f"@{ip}:" in contact or f"sip:{ip}:" in contact:
            return key
    raise AssertionError(f"200 OK from no node: {contact}")


async def registered_on(edge: Edge, tenant: EdgeTenant) -> set[str]:
    """The nodes that took the registrations of the tenant's phone (ps_contacts.reg_server,
    the node's systemname): every node reads the same contacts, each writes its own name."""
    async with edge.sessions() as session:
        servers = (
            await session.scalars(
                text("select reg_server from ps_contacts where endpoint = :name"),
                {"name": tenant.phone.sip_username},
            )
        ).all()
    by_name = {node.sandbox.config.systemname: key for key, node in edge.nodes.items()}
    return {by_name.get(server, server) for server in servers}


# ---- tests ----------------------------------------------------------------------------------


async def test_the_edge_probes_both_nodes(edge: Edge) -> None:
    assert await edge.node_alive_at_edge("a")
    assert await edge.node_alive_at_edge("b")


async def test_registrations_land_each_on_its_tenants_node(edge: Edge, sipp: SippPool) -> None:
    for tenant in edge.tenants.values():
        for _ in range(3):
            await register(sipp, tenant)
    assert await registered_on(edge, edge.tenants["a"]) == {"a"}
    assert await registered_on(edge, edge.tenants["b"]) == {"b"}


async def test_carrier_calls_land_on_the_dids_tenants_node(edge: Edge, sipp: SippPool) -> None:
    for _ in range(3):
        for key, tenant in edge.tenants.items():
            result = await carrier_call(sipp, tenant.did)
            if not result.ok:
                raise AssertionError(result.describe())
            assert answering_node(result, edge) == key
    # A number nobody holds goes to the default node (the active node with the lowest id).
    nobody = await carrier_call(sipp, "+33999999999")
    assert nobody.ok, nobody.describe()
    assert answering_node(nobody, edge) == "a"


async def test_a_node_calls_a_registered_phone_through_the_edge(edge: Edge, sipp: SippPool) -> None:
    tenant = edge.tenants["a"]
    registering = await register(sipp, tenant)
    phone = await sipp.uas("uas_answer.xml", ip=PHONE_IPS["a"], port=registering.port).start()
    call = await carrier_call(sipp, tenant.ring_did)
    assert call.ok, call.describe()
    answered = await phone.wait()
    assert answered.ok, answered.describe()
    invite = answered.received("INVITE")[0]
    # The node's call came through the edge (its Via) and kept it in the dialog.
    assert f"SIP/2.0/UDP {EDGE_IP}:{edge.port}" in invite, invite
    assert answering_node(call, edge) == "a"


async def test_phones_calls_land_each_on_its_tenants_node(edge: Edge, sipp: SippPool) -> None:
    for _ in range(3):
        for key, tenant in edge.tenants.items():
            result = await phone_call(sipp, tenant)
            assert result.ok, result.describe()
            assert answering_node(result, edge) == key


async def test_a_drained_node_gets_no_new_calls(edge: Edge, sipp: SippPool) -> None:
    a, b = edge.tenants["a"], edge.tenants["b"]
    await edge.set_state("a", NodeState.DRAINING)
    try:
        # The next request reads the state: no reload, no wait.
        for _ in range(3):
            carrier = await carrier_call(sipp, a.did)
            assert carrier.ok, carrier.describe()
            assert answering_node(carrier, edge) == "b"
            call = await phone_call(sipp, a)
            assert call.ok, call.describe()
            assert answering_node(call, edge) == "b"
        await register(sipp, a)
        assert await registered_on(edge, a) == {"b"}
        # Tenant B, on node B all along, is untouched.
        carrier = await carrier_call(sipp, b.did)
        assert carrier.ok, carrier.describe()
        assert answering_node(carrier, edge) == "b"
    finally:
        await edge.set_state("a", NodeState.ACTIVE)
    carrier = await carrier_call(sipp, a.did)
    assert carrier.ok, carrier.describe()
    assert answering_node(carrier, edge) == "a"


async def test_a_dead_nodes_tenants_reach_their_standby_within_10_s(
    edge: Edge, sipp: SippPool
) -> None:
    a, b = edge.tenants["a"], edge.tenants["b"]
    await register(sipp, a)
    await register(sipp, b)
    assert await registered_on(edge, a) == {"a"}
    assert await registered_on(edge, b) == {"b"}
    await edge.nodes["a"].kill()
    try:
        # Right after the crash: the REGISTER goes to the dead node first, the edge gives up
        # on it and sends it to the standby. sipp's own deadline is the 10 s.
        await register(sipp, a, timeout=FAILOVER_SECONDS)
        assert await registered_on(edge, a) == {"b"}
        call = await phone_call(sipp, a, timeout=FAILOVER_SECONDS)
        assert call.ok, call.describe()
        assert answering_node(call, edge) == "b"
        carrier = await carrier_call(sipp, a.did)
        assert carrier.ok, carrier.describe()
        assert answering_node(carrier, edge) == "b"
        # Tenant B is untouched.
        await register(sipp, b)
        assert await registered_on(edge, b) == {"b"}
        carrier = await carrier_call(sipp, b.did)
        assert carrier.ok, carrier.describe()
        assert answering_node(carrier, edge) == "b"
    finally:
        await edge.nodes["a"].start()
    # Node A back: its probes answered again, its tenant returns to it.
    await until(lambda: edge.node_alive_at_edge("a"), "node A back at the edge", 15)
    carrier = await carrier_call(sipp, a.did)
    assert carrier.ok, carrier.describe()
    assert answering_node(carrier, edge) == "a"


def _preloaded_options(edge: Edge, target: str, beyond: str) -> str | None:
    """An OPTIONS for ``target`` with a preloaded Route through the edge to ``beyond``, from
    a bystander: the first line of the edge's answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((BYSTANDER_IP, 0))
        port = sock.getsockname()[1]
        message = (
            f"OPTIONS {target} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {BYSTANDER_IP}:{port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
            f"Route: <sip:{edge.address};lr>, <{beyond};lr>\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:relay@{BYSTANDER_IP}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <{target}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.settimeout(5)
        sock.sendto(message.encode(), (EDGE_IP, edge.port))
        try:
            return sock.recv(65535).decode(errors="replace").split("\r\n", 1)[0]
        except TimeoutError:
            return None


async def test_the_edge_relays_nothing_to_a_destination_of_the_senders_choosing(
    edge: Edge,
) -> None:
    node_b = f"sip:{NODE_IPS['b']}:{edge.nodes['b'].sip_port}"
    answer = await asyncio.to_thread(_preloaded_options, edge, f"sip:somebody@{node_b[4:]}", node_b)
    assert answer is not None and answer.startswith("SIP/2.0 403"), answer


@contextlib.asynccontextmanager
async def control_plane(edge: Edge, database_url: str) -> AsyncIterator[RunningApp]:
    """The control plane on the module's database, told where the edge's control socket is
    (and, as docs/sip-edge.md asks, never to block the edge's address)."""
    node = edge.nodes["a"].sandbox
    ami = AmiConfig.from_settings(
        Settings(
            ami_host="127.0.0.1",
            ami_port=node.config.ami_port,
            ami_username=node.config.ami_username,
            ami_secret=node.secret(),
        )
    )
    with tempfile.TemporaryDirectory(prefix="graam-edge-cdr-") as cdr_dir:
        settings = Settings(
            agi_port=free_port(),
            cdr_dir=Path(cdr_dir),
            queue_calls_dir=Path(cdr_dir) / "queue-calls",
            billing_interval=86_400,
            sip_block_allow=[EDGE_IP],
            sip_edge_rpc_socket=edge.kamailio.rpc_socket,
        )
        async for running in start_app(Endpoints(database_url=database_url, ami=ami), settings):
            yield running


async def test_nodes_added_readdressed_and_removed_through_the_api_reach_the_edge(
    edge: Edge, database_url: str
) -> None:
    """The control plane sends ``dispatcher.reload`` when the node list changes: a node added
    through the API is probed (and, silent, taken out), readdressed is probed at its new
    address, removed is no longer probed; the test never calls the edge's RPC itself."""
    silent_port, other_port = free_udp_port(UNUSED_NODE_IP), free_udp_port(UNUSED_NODE_IP)
    silent = f"sip:{UNUSED_NODE_IP}:{silent_port}"
    moved = f"sip:{UNUSED_NODE_IP}:{other_port}"
    name = f"edge-silent-{uuid.uuid4().hex[:6]}"

    def flag_of(uri: str, flag: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return (await edge.dispatcher_flags()).get(uri, "").startswith(flag)

        return check

    async def gone(uri: str) -> bool:
        return uri not in await edge.dispatcher_flags()

    async with control_plane(edge, database_url) as app:
        operator = await make_operator(app.client, app.app.state.sessions)
        response = await app.client.post(
            "/api/v1/nodes",
            headers=operator.headers,
            json={
                "name": name,
                "systemname": name.replace("-", "_"),
                "ami_host": "127.0.0.1",
                "ami_port": free_port(),
                "ami_username": "nobody",
                "ami_secret": secrets.token_urlsafe(16),
                "sip_host": UNUSED_NODE_IP,
                "sip_port": silent_port,
            },
        )
        assert response.status_code == 201, response.text
        node_id = response.json()["id"]
        try:
            await until(flag_of(silent, "I"), "the new node probed and taken out", 15)
            response = await app.client.patch(
                f"/api/v1/nodes/{node_id}",
                headers=operator.headers,
                json={"sip_port": other_port},
            )
            assert response.status_code == 200, response.text
            await until(flag_of(moved, "I"), "the node probed at its new address", 15)
            assert await gone(silent)
        finally:
            response = await app.client.delete(f"/api/v1/nodes/{node_id}", headers=operator.headers)
            assert response.status_code == 204, response.text
        await until(partial(gone, moved), "the removed node no longer probed", 15)
    assert await edge.node_alive_at_edge("a")
    assert await edge.node_alive_at_edge("b")


async def test_nodes_behind_the_edge_keep_their_phones_contacts(edge: Edge) -> None:
    """rewrite_contact=no comes from the view for a node started behind the edge."""
    phone = edge.tenants["a"].phone.sip_username
    shown = await edge.nodes["a"].sandbox.cli(f"pjsip show endpoint {phone}")
    assert re.search(r"^\s*rewrite_contact\s*:\s*false\s*$", shown, re.MULTILINE), shown


async def banned_at_edge(edge: Edge, source: str) -> bool:
    try:
        await edge.kamailio.rpc("htable.get", "ban", source)
    except SandboxError:
        return False
    return True


async def test_a_flood_from_one_source_is_blocked_at_the_edge(edge: Edge, sipp: SippPool) -> None:
    banned = partial(banned_at_edge, edge, FLOOD_IP)

    assert not await banned()
    flood = sipp.uac(
        "carrier_probe.xml",
        ip=FLOOD_IP,
        service="+33100000000",
        keys={"caller": "+33100000001", "extra": "Subject: flood"},
        calls=400,
        rate=400,
        timeout=20,
    )
    await flood.start()
    await until(banned, "ban of the flooding source", 15)
    await flood.stop()
    # The banned source gets no answer at all; another source is answered as before.
    assert await asyncio.to_thread(sip_options, EDGE_IP, edge.port, 1.0, source=FLOOD_IP) is None
    answer = await asyncio.to_thread(sip_options, EDGE_IP, edge.port, 5.0, source=BYSTANDER_IP)
    assert answer is not None and answer.startswith("SIP/2.0 200"), answer
    call = await phone_call(sipp, edge.tenants["b"])
    assert call.ok, call.describe()


async def test_a_source_that_keeps_failing_to_authenticate_is_banned_at_the_edge(
    edge: Edge, sipp: SippPool
) -> None:
    """Slow guessing stays under pike's density, and behind the edge the nodes' security events
    name only the edge: the edge counts the answers refusing a request's credentials."""
    guessed = edge.tenants["a"].phone.sip_username
    banned = partial(banned_at_edge, edge, GUESSER_IP)
    for attempt in range(AUTH_FAILURES):
        assert not await banned(), f"banned after {attempt} failures"
        guess = sipp.uac(
            "register_refused.xml",
            ip=GUESSER_IP,
            service=guessed,
            auth=(guessed, f"guess-{attempt}"),
        )
        refused = await guess.run()
        assert refused.ok, refused.describe()
    await until(banned, "ban of the guessing source", 5)
    # The guesser gets no answer at all; the phone with its password registers as before.
    assert await asyncio.to_thread(sip_options, EDGE_IP, edge.port, 1.0, source=GUESSER_IP) is None
    await register(sipp, edge.tenants["a"])
    assert not await banned_at_edge(edge, PHONE_IPS["a"])
