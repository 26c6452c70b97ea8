from __future__ import annotations

import pytest

from graam_pbx.settings import SandboxMode, Settings


def test_sandbox_runs_unless_an_ami_host_is_given() -> None:
    assert Settings().sandbox_enabled
    assert not Settings(ami_host="10.0.0.5").sandbox_enabled
    assert Settings(ami_host="10.0.0.5", asterisk_sandbox=SandboxMode.ON).sandbox_enabled
    assert not Settings(asterisk_sandbox=SandboxMode.OFF).sandbox_enabled


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAAM_API_PORT", "9001")
    monkeypatch.setenv("GRAAM_AMI_SECRET", "s3cret")
    settings = Settings()
    assert settings.api_port == 9001
    assert settings.ami_secret is not None
    assert settings.ami_secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_everything_binds_to_loopback_by_default() -> None:
    settings = Settings()
    assert settings.api_host == "127.0.0.1"
    assert settings.sip_bind == "127.0.0.1"


def test_readme_lists_every_setting() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`GRAAM_{name.upper()}`" in readme, name
