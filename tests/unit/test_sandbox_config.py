"""The sandbox's per-instance configuration, written without starting anything."""

from __future__ import annotations

from pathlib import Path

from graam_pbx.sandbox.asterisk import BASE_CONF_DIR, AsteriskSandbox, AsteriskSandboxConfig


def _sandbox(tmp_path: Path) -> AsteriskSandbox:
    return AsteriskSandbox(
        AsteriskSandboxConfig(
            rootfs=tmp_path / "rootfs",
            state_dir=tmp_path / "state",
            ami_port=6038,
            ami_username="graam",
            sip_port=6060,
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
