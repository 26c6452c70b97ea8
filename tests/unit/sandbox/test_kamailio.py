"""The SIP edge sandbox's configuration, written and checked without starting anything."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from graam_pbx.sandbox import SandboxError
from graam_pbx.sandbox.kamailio import (
    CONF_DIR,
    LOCAL_CONF,
    MAIN_CONF,
    KamailioConfig,
    KamailioSandbox,
    kamailio_db_url,
    local_conf,
)

DB = "postgresql+asyncpg://graam:s3cret-_x@127.0.0.1:5433/pbx"


def _edge(tmp_path: Path, **overrides: object) -> KamailioSandbox:
    values: dict[str, object] = {
        "state_dir": tmp_path / "edge",
        "database_url": DB,
        "sip_address": "127.0.0.133",
        "sip_port": 5070,
    }
    values.update(overrides)
    return KamailioSandbox(KamailioConfig(**values))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (DB, "postgres://graam:s3cret-_x@127.0.0.1:5433/pbx"),
        ("postgresql://graam:pw@db.example/pbx", "postgres://graam:pw@db.example:5432/pbx"),
        (
            "postgres://graam@127.0.0.1:5432/pbx?sslmode=disable",
            "postgres://graam@127.0.0.1:5432/pbx",
        ),
        ("postgresql://graam:pw@[::1]:5432/pbx", "postgres://graam:pw@[::1]:5432/pbx"),
        ("postgresql://graam:p%2Fw@127.0.0.1/pbx", "postgres://graam:p/w@127.0.0.1:5432/pbx"),
    ],
)
def test_database_urls_become_db_postgres_urls(url: str, expected: str) -> None:
    assert kamailio_db_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "mysql://graam:pw@127.0.0.1/pbx",  # another database
        "postgresql://127.0.0.1/pbx",  # no user
        "postgresql://graam:pw@127.0.0.1/",  # no database
        "postgresql://graam:p%21w@127.0.0.1/pbx",  # '!' would end the #!substdef
        "postgresql://graam:p%22w@127.0.0.1/pbx",  # '"' would end a cfg string
        "postgresql://graam:p%40w@127.0.0.1/pbx",  # '@' in the password: db_postgres splits at it
    ],
)
def test_urls_kamailio_cannot_take_are_refused(url: str) -> None:
    with pytest.raises(SandboxError):
        kamailio_db_url(url)


def test_the_local_file_defines_what_the_shipped_cfg_uses(tmp_path: Path) -> None:
    text = local_conf(
        KamailioConfig(state_dir=tmp_path, database_url=DB, sip_address="127.0.0.133"),
        tmp_path / "rpc.sock",
    )
    defined = dict(re.findall(r'^#!substdef "!(\w+)!(.*)!g"$', text, re.MULTILINE))
    assert defined == {
        "EDGE_SIP_ADDR": "127.0.0.133",
        "EDGE_SIP_PORT": "5060",
        "EDGE_DB_URL": "postgres://graam:s3cret-_x@127.0.0.1:5433/pbx",
        "EDGE_RPC_SOCKET": str(tmp_path / "rpc.sock"),
        "EDGE_PIKE_DENSITY": "30",
        "EDGE_BAN_SECONDS": "300",
        "EDGE_AUTH_FAILURES": "20",
        "EDGE_AUTH_WINDOW": "600",
    }
    shipped = (CONF_DIR / MAIN_CONF).read_text()
    used = set(re.findall(r"\bEDGE_[A-Z_]+\b", shipped))
    assert used == set(defined)
    assert f'include_file "{LOCAL_CONF}"' in shipped


@pytest.mark.parametrize(
    "overrides",
    [
        {"sip_address": "::1"},
        {"sip_address": "edge.example"},
        {"sip_port": 0},
        {"pike_density": 0},
        {"auth_failures": 0},
        {"auth_window": 0},
        {"state_dir": Path("/tmp/with!bang")},  # noqa: S108 - never created
    ],
)
def test_values_the_cfg_cannot_take_are_refused(
    tmp_path: Path, overrides: dict[str, object]
) -> None:
    edge = _edge(tmp_path, **overrides)
    with pytest.raises(SandboxError):
        local_conf(edge.config, edge.rpc_socket)


def test_the_state_directory_is_private(tmp_path: Path) -> None:
    edge = _edge(tmp_path)
    main = edge.write_config()
    assert main.read_text() == (CONF_DIR / MAIN_CONF).read_text()
    assert stat.S_IMODE(edge.state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((edge.state_dir / LOCAL_CONF).stat().st_mode) & 0o077 == 0


async def test_kamailio_accepts_the_shipped_configuration(tmp_path: Path) -> None:
    out = await _edge(tmp_path).check()
    assert "config file ok" in out
    assert "udp: 127.0.0.133 [127.0.0.133]:5070" in out
