"""The sandbox's per-instance configuration, written without starting anything."""

from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path

import pytest

from graam_pbx.sandbox import SandboxError
from graam_pbx.sandbox.asterisk import BASE_CONF_DIR, AsteriskSandbox, AsteriskSandboxConfig

WILDCARD = "0.0.0.0"  # noqa: S104 - what the sandbox must refuse to announce


def _sandbox(tmp_path: Path, **addresses: str) -> AsteriskSandbox:
    return AsteriskSandbox(
        AsteriskSandboxConfig(
            rootfs=tmp_path / "rootfs",
            state_dir=tmp_path / "state",
            ami_port=6038,
            ami_username="graam",
            sip_port=6060,
            **addresses,  # type: ignore[arg-type]
        )
    )


def test_instance_config_has_its_ports_and_a_generated_secret(tmp_path: Path) -> None:
    sandbox = _sandbox(tmp_path)
    sandbox._write_config()
    manager = (sandbox.etc_dir / "manager_graam.conf").read_text()
    assert "port = 6038" in manager
    secret = sandbox.secret()
    assert len(secret) >= 24
    assert f"secret = {secret}" in manager
    assert (sandbox.etc_dir / "manager_graam.conf").stat().st_mode & 0o077 == 0
    assert "bind = 127.0.0.1:6060" in (sandbox.etc_dir / "pjsip_transports.conf").read_text()
    assert _sandbox(tmp_path).secret() == secret  # kept between starts


def test_base_files_are_copied_and_generated_files_survive_a_restart(tmp_path: Path) -> None:
    sandbox = _sandbox(tmp_path)
    sandbox._write_config()
    for name in ("modules.conf", "manager.conf", "queues.conf", "extensions.conf"):
        assert (sandbox.etc_dir / name).read_text() == (BASE_CONF_DIR / name).read_text()
    generated = sandbox.etc_dir / "graam" / "extensions.conf"
    generated.write_text("[t1-internal]\n")
    sandbox._write_config()
    assert generated.read_text() == "[t1-internal]\n"


def test_shipped_config_keeps_the_contract() -> None:
    manager = (BASE_CONF_DIR / "manager.conf").read_text()
    assert "bindaddr = 127.0.0.1" in manager
    assert "persistentmembers = no" in (BASE_CONF_DIR / "queues.conf").read_text()
    assert "execincludes = no" in (BASE_CONF_DIR / "asterisk.conf").read_text()
    modules = (BASE_CONF_DIR / "modules.conf").read_text()
    assert "autoload = no" in modules
    assert "func_shell" not in modules.replace("never func_shell", "")
    assert "enabled = yes" in (BASE_CONF_DIR / "cdr_manager.conf").read_text()


def _templates(text: str) -> dict[str, str]:
    """``[name](!)`` sections of a configuration file and their bodies."""
    return {
        match.group(1): match.group(2).strip()
        for match in re.finditer(r"^\[([^\]]+)\]\(!\)\n((?:[^\n;\[][^\n]*\n?)*)", text, re.M)
    }


def test_every_endpoint_binds_and_announces_its_media_address(tmp_path: Path) -> None:
    sandbox = _sandbox(tmp_path)
    sandbox._write_config()
    templates = _templates((sandbox.etc_dir / "pjsip_transports.conf").read_text())
    media = "media_address = 127.0.0.1\nbind_rtp_to_media_address = yes"
    assert templates == {"graam-trunk": media}
    # The shipped file, for an operator's own Asterisk, has the same template.
    shipped = _templates((BASE_CONF_DIR / "pjsip_transports.conf").read_text())
    assert set(shipped) == {"graam-trunk"}
    assert all("bind_rtp_to_media_address = yes" in body for body in shipped.values())
    assert "](graam-trunk)" in (BASE_CONF_DIR / "templates" / "pjsip_trunks.conf.j2").read_text()
    # Phones' endpoints are rows of ps_endpoints: the view reads the same address from
    # Asterisk's database connection, which libpq sets from PGOPTIONS.
    assert sandbox._environment()["PGOPTIONS"] == (
        "-c graam.node=graam -c graam.media_address=127.0.0.1"
    )
    # ICE is on for the endpoints that ask for it, and only browser phones do: no trunk or
    # SIP phone gathers candidates from every interface of the machine.
    assert "icesupport = yes" in (BASE_CONF_DIR / "rtp.conf").read_text()
    trunks = (BASE_CONF_DIR / "templates" / "pjsip_trunks.conf.j2").read_text()
    assert "ice_support" not in trunks and "webrtc" not in trunks


@pytest.mark.parametrize(
    ("addresses", "bind", "media"),
    [
        ({"sip_media_address": "127.0.0.5"}, "127.0.0.1:6060", "127.0.0.5"),
        ({"sip_bind": "::1"}, "[::1]:6060", "::1"),
        ({"sip_bind": WILDCARD, "sip_media_address": "192.0.2.7"}, "0.0.0.0:6060", "192.0.2.7"),
    ],
)
def test_the_media_address_is_the_sip_address_unless_set(
    tmp_path: Path, addresses: dict[str, str], bind: str, media: str
) -> None:
    text = _sandbox(tmp_path, **addresses)._transports()
    assert f"bind = {bind}\n" in text
    assert text.count(f"media_address = {media}\n") == 1
    options = _sandbox(tmp_path, **addresses)._environment()["PGOPTIONS"]
    assert options == f"-c graam.node=graam -c graam.media_address={media}"


@pytest.mark.parametrize(
    ("addresses", "setting"),
    [
        ({"sip_bind": WILDCARD}, "GRAAM_SIP_MEDIA_ADDRESS"),
        ({"sip_bind": "::"}, "GRAAM_SIP_MEDIA_ADDRESS"),
        ({"sip_bind": "localhost"}, "GRAAM_SIP_BIND"),
        ({"sip_media_address": "127.0.0.1\n[evil]"}, "GRAAM_SIP_MEDIA_ADDRESS"),
    ],
)
def test_a_media_address_that_cannot_work_is_refused(
    tmp_path: Path, addresses: dict[str, str], setting: str
) -> None:
    with pytest.raises(SandboxError, match=setting):
        _sandbox(tmp_path, **addresses)._transports()


def test_the_instance_resolves_the_machines_name_to_loopback(tmp_path: Path) -> None:
    sandbox = _sandbox(tmp_path)
    etc = tmp_path / "state" / "upper" / "etc"
    etc.mkdir(parents=True)
    (etc / "resolv.conf").symlink_to(tmp_path / "elsewhere")
    sandbox._write_name_service()
    hosts = (etc / "hosts").read_text().splitlines()
    loopback = next(line for line in hosts if line.startswith("127.0.0.1\t")).split()[1:]
    assert {"localhost", socket.gethostname()} <= set(loopback)
    resolver = (etc / "resolv.conf").read_text()
    assert not (etc / "resolv.conf").is_symlink()
    assert not (tmp_path / "elsewhere").exists()
    nameservers = [
        line.split()[1] for line in resolver.splitlines() if line.startswith("nameserver")
    ]
    assert nameservers == ["127.0.0.1"]
    assert "options timeout:1 attempts:1" in resolver
    assert not (tmp_path / "rootfs").exists()  # the shared cache is never written


def test_the_instance_is_closed_to_other_users(tmp_path: Path) -> None:
    sandbox = _sandbox(tmp_path)
    sandbox.state_dir.mkdir(parents=True)
    sandbox.state_dir.chmod(0o755)  # as an older version made it
    previous = os.umask(0o000)
    try:
        sandbox._write_config()
    finally:
        os.umask(previous)
    generated = sandbox.etc_dir / "graam"
    for directory in (sandbox.state_dir, sandbox.etc_dir, generated):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    for path in sandbox.etc_dir.rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) & stat.S_IRWXO == 0, path
    assert stat.S_IMODE((sandbox.etc_dir / "manager_graam.conf").stat().st_mode) == 0o600


def test_the_http_server_of_browser_phones_is_on_the_sip_address_or_off(tmp_path: Path) -> None:
    off = _sandbox(tmp_path)
    off._write_config()
    assert "enabled = no" in (off.etc_dir / "http.conf").read_text()
    on = AsteriskSandbox(
        AsteriskSandboxConfig(
            rootfs=tmp_path / "rootfs",
            state_dir=tmp_path / "on",
            ami_port=6038,
            ami_username="graam",
            sip_bind="127.0.0.9",
            http_port=6088,
        )
    )
    on._write_config()
    http = (on.etc_dir / "http.conf").read_text()
    assert "enabled = yes\nbindaddr = 127.0.0.9\nbindport = 6088" in http
    transports = (on.etc_dir / "pjsip_transports.conf").read_text()
    assert "[transport-ws]\ntype = transport\nprotocol = ws\nbind = 127.0.0.9\n" in transports
