"""The SIP views Asterisk reads devices from, as Asterisk's own role sees them: every option
the file renderer wrote, a caller name that cannot break out of its value, lookups by id on
an index, and a role that can read the views and write contacts and nothing else."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from graam_pbx.asterisk import realtime
from graam_pbx.db import create_engine, plain_url
from tests.factories import TenantWorld, browser_device, make_world
from tests.integration.test_devices_api import Sessions, create_device

KEY = bytes(range(32))


@pytest.fixture(scope="module")
async def role(database_url: str) -> realtime.RealtimeDatabase:
    """Asterisk's role on this database, made as the applier makes it."""
    database = realtime.managed_database(database_url, KEY)
    engine = create_engine(database_url, pool_size=2)
    try:
        async with engine.begin() as connection:
            await realtime.ensure_role(connection, database)
        async with engine.begin() as connection:  # again: an existing role is updated
            await realtime.ensure_role(connection, database)
    finally:
        await engine.dispose()
    return database


@pytest.fixture
async def as_asterisk(
    database_url: str, role: realtime.RealtimeDatabase
) -> AsyncIterator[asyncpg.Connection]:
    """A connection as Asterisk opens it: its role and password, its node's media address."""
    url = make_url(plain_url(database_url)).set(username=role.user, password=role.password)
    connection = await asyncpg.connect(
        url.render_as_string(hide_password=False),
        server_settings={"graam.media_address": "127.0.0.91"},
    )
    yield connection
    await connection.close()


async def _world_with_device(
    client: httpx.AsyncClient, sessions: Sessions, display_name: str | None = None
) -> tuple[TenantWorld, dict[str, Any]]:
    world = await make_world(client, sessions)
    if display_name is not None:
        # Straight into the table: the view must hold whatever a row holds, not only what
        # today's API accepts.
        async with sessions() as session, session.begin():
            await session.execute(
                text("UPDATE users SET display_name = :name WHERE id = :id"),
                {"name": display_name, "id": world.agent.user_id},
            )
    device = await create_device(client, world, codecs=["g722", "ulaw"], transport="tcp")
    return world, device


async def test_a_device_is_one_endpoint_auth_and_aor_with_every_option(
    client: httpx.AsyncClient, sessions: Sessions, as_asterisk: asyncpg.Connection
) -> None:
    world, device = await _world_with_device(client, sessions, "Ann Agent")
    name, tid = device["sip_username"], world.tenant_id

    endpoint = dict(await as_asterisk.fetchrow("SELECT * FROM ps_endpoints WHERE id = $1", name))
    assert endpoint == {
        "id": name,
        "transport": "transport-tcp",
        "aors": name,
        "auth": name,
        "context": f"t{tid}-internal",
        "allow": "!all,g722,ulaw",
        "accountcode": f"t{tid}",
        "tenantid": f"t{tid}",
        "callerid": f'"Ann Agent" <{device["extension"]}>',
        "set_var": (
            f"__GRAAM_TENANT={tid};__GRAAM_DEVICE={device['id']};"
            f"__GRAAM_AGENT={world.agent.user_id}"
        ),
        "direct_media": "no",
        "rtp_symmetric": "yes",
        "force_rport": "yes",
        "rewrite_contact": "yes",
        "dtmf_mode": "rfc4733",
        "media_address": "127.0.0.91",
        "bind_rtp_to_media_address": "yes",
        "webrtc": None,
        "dtls_cert_file": None,
    }
    auth = dict(await as_asterisk.fetchrow("SELECT * FROM ps_auths WHERE id = $1", name))
    async with sessions() as session:
        ha1 = await session.scalar(
            text("SELECT password_ha1 FROM agent_devices WHERE id = :id"), {"id": device["id"]}
        )
    assert auth == {
        "id": name,
        "auth_type": "digest",
        "username": name,
        "realm": "graam",
        "password_digest": f"md5:{ha1}",
    }
    aor = dict(await as_asterisk.fetchrow("SELECT * FROM ps_aors WHERE id = $1", name))
    assert aor == {
        "id": name,
        "contact": None,
        "max_contacts": device["max_contacts"],
        "remove_existing": "yes",
        "qualify_frequency": 60,
        "support_path": "yes",
    }


async def test_a_udp_device_names_no_transport_and_a_node_without_address_no_media_address(
    client: httpx.AsyncClient,
    sessions: Sessions,
    database_url: str,
    role: realtime.RealtimeDatabase,
) -> None:
    world = await make_world(client, sessions)
    device = await create_device(client, world, transport="udp")
    url = make_url(plain_url(database_url)).set(username=role.user, password=role.password)
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        row = await connection.fetchrow(
            "SELECT transport, media_address, bind_rtp_to_media_address "
            "FROM ps_endpoints WHERE id = $1",
            device["sip_username"],
        )
    finally:
        await connection.close()
    assert dict(row) == {
        "transport": None,
        "media_address": None,
        "bind_rtp_to_media_address": None,
    }


async def test_a_browser_device_is_a_webrtc_endpoint_with_the_nodes_certificate(
    client: httpx.AsyncClient,
    sessions: Sessions,
    database_url: str,
    role: realtime.RealtimeDatabase,
    as_asterisk: asyncpg.Connection,
) -> None:
    world = await make_world(client, sessions)
    device = await browser_device(client, world, "301")
    columns = "SELECT transport, allow, webrtc, dtls_cert_file FROM ps_endpoints WHERE id = $1"
    row = await as_asterisk.fetchrow(columns, device["sip_username"])
    # No SIP transport named: it comes over the WebSocket. The certificate where Asterisk
    # sees the generated configuration, unless its connection names another.
    assert dict(row) == {
        "transport": None,
        "allow": "!all,opus,g722,ulaw,alaw",
        "webrtc": "yes",
        "dtls_cert_file": "/etc/asterisk/graam/dtls.pem",
    }
    url = make_url(plain_url(database_url)).set(username=role.user, password=role.password)
    connection = await asyncpg.connect(
        url.render_as_string(hide_password=False),
        server_settings={"graam.dtls_cert_file": "/srv/asterisk/etc/graam/dtls.pem"},
    )
    try:
        elsewhere = await connection.fetchval(
            "SELECT dtls_cert_file FROM ps_endpoints WHERE id = $1", device["sip_username"]
        )
    finally:
        await connection.close()
    assert elsewhere == "/srv/asterisk/etc/graam/dtls.pem"


async def test_a_hostile_caller_name_stays_inside_its_value(
    client: httpx.AsyncClient, sessions: Sessions, as_asterisk: asyncpg.Connection
) -> None:
    # res_config_pgsql splits every value at ';' and decodes ^XX: neither may come through raw.
    _, device = await _world_with_device(client, sessions, 'Eve"<1>;set_var=X^2\\\u2028\x7f end')
    callerid = await as_asterisk.fetchval(
        "SELECT callerid FROM ps_endpoints WHERE id = $1", device["sip_username"]
    )
    assert callerid == f'"Eve1^3Bset_var=X^5E2 end" <{device["extension"]}>'


async def test_a_codec_outside_its_alphabet_is_left_out(
    client: httpx.AsyncClient, sessions: Sessions, as_asterisk: asyncpg.Connection
) -> None:
    # Written behind the API's back: ';' would make res_config_pgsql split the value.
    _, device = await _world_with_device(client, sessions)
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE agent_devices SET codecs = '{ulaw,g729;x}' WHERE id = :id"),
            {"id": device["id"]},
        )
    allow = await as_asterisk.fetchval(
        "SELECT allow FROM ps_endpoints WHERE id = $1", device["sip_username"]
    )
    assert allow == "!all,ulaw"


async def test_a_lookup_by_id_reads_one_table_on_its_unique_index(
    client: httpx.AsyncClient, sessions: Sessions, as_asterisk: asyncpg.Connection
) -> None:
    # The rows are computed when their sources change (sip_device_rows): a lookup plans no
    # join of devices, tenants, placements and users.
    _, device = await _world_with_device(client, sessions)
    await as_asterisk.execute("SET enable_seqscan = off")  # a small table: show the plan's index
    # With and without a node named (graam.node: the views then list its tenants' devices).
    for node, view in itertools.product(("", "graam"), ("ps_endpoints", "ps_auths", "ps_aors")):
        await as_asterisk.execute("SELECT set_config('graam.node', $1, false)", node)
        plan = "\n".join(
            row[0]
            for row in await as_asterisk.fetch(
                f"EXPLAIN SELECT * FROM {view} WHERE id = $1",  # noqa: S608 - fixed names
                device["sip_username"],
            )
        )
        assert "uq_sip_device_rows_id" in plan, plan
        for source in ("agent_devices", "tenants", "tenant_placements", "users"):
            assert f" {source} " not in plan, plan


async def test_the_role_reads_the_views_writes_contacts_and_nothing_else(
    client: httpx.AsyncClient, sessions: Sessions, as_asterisk: asyncpg.Connection
) -> None:
    _, device = await _world_with_device(client, sessions)
    name = device["sip_username"]
    for statement in (
        "SELECT * FROM agent_devices",
        "SELECT * FROM users",
        "SELECT * FROM tenants",
        "UPDATE agent_devices SET max_contacts = 10",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await as_asterisk.execute(statement)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await as_asterisk.execute("CREATE TABLE stolen (x int)")
    # Registrations are soft state: Asterisk's one connection never waits on a disk flush.
    assert await as_asterisk.fetchval("SHOW synchronous_commit") == "off"
    contact = f"{name}^3B@0123456789abcdef"
    await as_asterisk.execute(
        "INSERT INTO ps_contacts (id, uri, expiration_time, endpoint, qualify_2xx_only) "
        "VALUES ($1, $2, 1, $3, 'false')",
        contact,
        f"sip:{name}@127.0.0.91:5062",
        name,
    )
    # Asterisk reads an AOR's contacts by the id's prefix.
    found = await as_asterisk.fetch("SELECT id FROM ps_contacts WHERE id LIKE $1", f"{name}^3B@%")
    assert [row["id"] for row in found] == [contact]


async def test_a_deleted_device_leaves_no_endpoint_and_no_contact(
    client: httpx.AsyncClient, sessions: Sessions, as_asterisk: asyncpg.Connection
) -> None:
    world, device = await _world_with_device(client, sessions)
    name = device["sip_username"]
    await as_asterisk.execute(
        "INSERT INTO ps_contacts (id, uri, endpoint) VALUES ($1, $2, $3)",
        f"{name}^3B@feedface",
        f"sip:{name}@127.0.0.91:5062",
        name,
    )
    deleted = await client.delete(f"/api/v1/devices/{device['id']}", headers=world.admin.headers)
    assert deleted.status_code == 204, deleted.text
    for view in ("ps_endpoints", "ps_auths", "ps_aors"):
        assert (
            await as_asterisk.fetchval(
                f"SELECT count(*) FROM {view} WHERE id = $1",  # noqa: S608 - fixed names
                name,
            )
            == 0
        )
    assert (
        await as_asterisk.fetchval("SELECT count(*) FROM ps_contacts WHERE endpoint = $1", name)
        == 0
    )


async def test_two_databases_have_two_roles() -> None:
    first = realtime.managed_database("postgresql://u@127.0.0.1:5432/one", KEY)
    second = realtime.managed_database("postgresql://u@127.0.0.1:5432/two", KEY)
    assert first.user != second.user
    assert first.password != second.password
    # Every process of one deployment (same key) sets the same password.
    assert realtime.managed_database("postgresql://u@127.0.0.1:5432/one", KEY) == first


async def _endpoint(as_asterisk: asyncpg.Connection, name: str) -> dict[str, Any] | None:
    row = await as_asterisk.fetchrow(
        "SELECT callerid, allow, transport FROM ps_endpoints WHERE id = $1", name
    )
    return None if row is None else dict(row)


async def _sql(sessions: Sessions, statement: str, **values: Any) -> None:
    async with sessions() as session, session.begin():
        await session.execute(text(statement), values)


async def test_the_rows_follow_each_source_they_are_made_of(
    client: httpx.AsyncClient, sessions: Sessions, as_asterisk: asyncpg.Connection
) -> None:
    # Written straight into the tables, as a bulk import or a migration would: the triggers,
    # not the API, keep what Asterisk reads in step.
    world, device = await _world_with_device(client, sessions, "Ada")
    name, extension = device["sip_username"], device["extension"]
    assert await _endpoint(as_asterisk, name) == {
        "callerid": f'"Ada" <{extension}>',
        "allow": "!all,g722,ulaw",
        "transport": "transport-tcp",
    }
    agent, tenant = world.agent.user_id, world.tenant_id
    await _sql(sessions, "UPDATE users SET display_name = 'Grace' WHERE id = :u", u=agent)
    assert (await _endpoint(as_asterisk, name) or {})["callerid"] == f'"Grace" <{extension}>'
    await _sql(sessions, "UPDATE users SET disabled = true WHERE id = :u", u=agent)
    assert (await _endpoint(as_asterisk, name) or {})["callerid"] == f'"{extension}" <{extension}>'
    await _sql(sessions, "UPDATE users SET disabled = false WHERE id = :u", u=agent)
    await _sql(
        sessions,
        "UPDATE agent_devices SET codecs = '{alaw}', transport = 'udp' WHERE id = :d",
        d=device["id"],
    )
    assert await _endpoint(as_asterisk, name) == {
        "callerid": f'"Grace" <{extension}>',
        "allow": "!all,alaw",
        "transport": None,
    }
    await _sql(sessions, "UPDATE tenants SET status = 'terminated' WHERE id = :t", t=tenant)
    assert await _endpoint(as_asterisk, name) is None
    assert await as_asterisk.fetchval("SELECT count(*) FROM ps_auths WHERE id = $1", name) == 0
    await _sql(sessions, "UPDATE tenants SET status = 'active' WHERE id = :t", t=tenant)
    assert await _endpoint(as_asterisk, name) is not None
    assert await as_asterisk.fetchval("SELECT count(*) FROM ps_aors WHERE id = $1", name) == 1


async def test_a_placement_moves_a_tenants_devices_to_its_nodes_views(
    client: httpx.AsyncClient, sessions: Sessions, as_asterisk: asyncpg.Connection
) -> None:
    world, device = await _world_with_device(client, sessions)
    name, tenant = device["sip_username"], world.tenant_id
    node = f"rows-{tenant}"
    await _sql(
        sessions,
        "INSERT INTO asterisk_nodes (name, systemname, ami_host, ami_port, ami_username, "
        "ami_secret, sip_host, sip_port, state, version) VALUES (:n, :n, '127.0.0.1', 5038, "
        "'x', 'x', '127.0.0.1', 5060, 'down', 1)",
        n=node,
    )

    async def seen_by(systemname: str) -> bool:
        await as_asterisk.execute("SELECT set_config('graam.node', $1, false)", systemname)
        return await _endpoint(as_asterisk, name) is not None

    try:
        assert not await seen_by(node)  # the tenant lives on the default node
        await _sql(
            sessions,
            "INSERT INTO tenant_placements (tenant_id, node_id) "
            "SELECT :t, id FROM asterisk_nodes WHERE name = :n",
            t=tenant,
            n=node,
        )
        assert await seen_by(node)
        await _sql(sessions, "DELETE FROM tenant_placements WHERE tenant_id = :t", t=tenant)
        assert not await seen_by(node)
        assert await seen_by("")  # no node named: every device
    finally:
        await as_asterisk.execute("RESET graam.node")
        await _sql(sessions, "DELETE FROM tenant_placements WHERE tenant_id = :t", t=tenant)
        await _sql(sessions, "DELETE FROM asterisk_nodes WHERE name = :n", n=node)


async def test_two_transactions_changing_one_tenants_devices_both_show(
    client: httpx.AsyncClient,
    sessions: Sessions,
    as_asterisk: asyncpg.Connection,
    database_url: str,
) -> None:
    # The agent renamed while its device's codecs change: the second transaction's rows are
    # written after the first commits, from a snapshot holding it.
    world, device = await _world_with_device(client, sessions, "Before")
    name, extension = device["sip_username"], device["extension"]
    first = await asyncpg.connect(plain_url(database_url))
    second = await asyncpg.connect(plain_url(database_url))
    try:
        renaming = first.transaction()
        await renaming.start()
        await first.execute(
            "UPDATE users SET display_name = 'After' WHERE id = $1", world.agent.user_id
        )
        recoding = second.transaction()
        await recoding.start()
        waiting = asyncio.create_task(
            second.execute("UPDATE agent_devices SET codecs = '{alaw}' WHERE id = $1", device["id"])
        )
        blocked_pid = second.get_server_pid()
        async with asyncio.timeout(10):
            while (
                await first.fetchval(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", blocked_pid
                )
                != "Lock"
            ):
                await asyncio.sleep(0.01)
        await renaming.commit()
        await waiting
        await recoding.commit()
    finally:
        await first.close()
        await second.close()
    assert await _endpoint(as_asterisk, name) == {
        "callerid": f'"After" <{extension}>',
        "allow": "!all,alaw",
        "transport": "transport-tcp",
    }
