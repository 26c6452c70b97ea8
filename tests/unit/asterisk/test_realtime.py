"""Asterisk's realtime connection: the generated res_pgsql.conf, its role and what reloads it."""

from __future__ import annotations

import pytest

from graam_pbx.asterisk import realtime
from graam_pbx.asterisk.render import RenderError
from graam_pbx.asterisk.writer import reloads_for

KEY = bytes(range(32))


def test_the_managed_role_is_the_databases_own_with_a_derived_password() -> None:
    database = realtime.managed_database("postgresql+asyncpg://graam:pw@127.0.0.1:55432/pbx", KEY)
    assert database.host == "127.0.0.1"
    assert database.port == 55432
    assert database.dbname == "pbx"
    assert database.user == realtime.role_name("pbx")
    assert database.user.startswith("graam_asterisk_") and len(database.user) <= 63
    # Not the control plane's own credentials, and the same in every process of a deployment.
    assert database.password != "pw"
    assert realtime.managed_database("postgresql://x@127.0.0.1:55432/pbx", KEY) == database
    # Without a key, nobody else can guess it.
    assert realtime.role_password(None, database.user) != realtime.role_password(
        None, database.user
    )


def test_a_unix_socket_becomes_loopback() -> None:
    database = realtime.managed_database("postgresql://graam@/pbx?host=/run/postgresql", KEY)
    assert database.host == "127.0.0.1"


def test_res_pgsql_conf_names_the_database_and_the_role() -> None:
    database = realtime.RealtimeDatabase("127.0.0.1", 5432, "pbx", "graam_asterisk_1", "abc123")
    text = realtime.res_pgsql_conf(database)
    assert "[general]\n" in text
    for line in (
        "dbhost = 127.0.0.1",
        "dbport = 5432",
        "dbname = pbx",
        "dbuser = graam_asterisk_1",
        "dbpass = abc123",
    ):
        assert f"\n{line}\n" in text


@pytest.mark.parametrize(
    "field",
    [
        {"password": "a;b"},
        {"password": "a b"},
        {"password": "x\n[evil]"},
        {"dbname": "pbx;x"},
        {"user": "u\nv"},
        {"host": "h;x"},
        {"port": 0},
    ],
)
def test_a_value_the_file_cannot_hold_is_refused(field: dict[str, object]) -> None:
    database = realtime.RealtimeDatabase("127.0.0.1", 5432, "pbx", "u", "p")._replace(**field)  # type: ignore[arg-type]
    with pytest.raises(RenderError):
        realtime.res_pgsql_conf(database)


def test_an_operators_url_is_used_as_it_is() -> None:
    database = realtime.given_database("postgresql://ast:s3cret@10.0.0.5:6432/pbx")
    assert database == realtime.RealtimeDatabase("10.0.0.5", 6432, "pbx", "ast", "s3cret")
    with pytest.raises(RenderError):
        realtime.given_database("postgresql://10.0.0.5/pbx")


def test_a_new_connection_reloads_its_driver_then_pjsip_and_a_tenant_file_never_pjsip() -> None:
    assert reloads_for([realtime.CONF_FILE]) == {"res_config_pgsql", "res_pjsip"}
    # Devices are in no file: a tenant's files reload the dialplan, queues, voicemail, music.
    tenant = [f"tenants/t7/{name}" for name in ("extensions.conf", "queues.conf")]
    assert "res_pjsip" not in reloads_for(tenant)
