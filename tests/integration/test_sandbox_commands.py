"""`graam-pbx asterisk status|cli|up|down` find the running sandbox from any folder, or say
every place they looked.

The commands run as a user would run them, in a folder of their own, against the session's
real sandbox; the per-user list of sandboxes is a temporary one (``XDG_CACHE_HOME``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from graam_pbx.sandbox import instances
from graam_pbx.settings import Settings
from tests.conftest import Asterisk


def command_env(cache: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRAAM_")}
    return {**env, "XDG_CACHE_HOME": str(cache), **extra}


async def asterisk_command(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """``python -m graam_pbx asterisk ARGS`` run in ``cwd``: its exit code and console."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "graam_pbx",
        "asterisk",
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def test_a_sandbox_started_elsewhere_is_found_from_any_folder(
    asterisk: Asterisk, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    state = asterisk.sandbox.state_dir
    instances.record(state, cache / "graam-pbx" / instances.REGISTRY_NAME)
    env = command_env(cache)

    code, output = await asterisk_command("status", cwd=elsewhere, env=env)
    assert code == 0, output
    assert f"running (pid {asterisk.info.pid}) from {state}" in output, output
    assert f"AMI 127.0.0.1:{asterisk.info.ami_port}" in output, output

    code, output = await asterisk_command("cli", "core show version", cwd=elsewhere, env=env)
    assert code == 0, output
    assert output.startswith("Asterisk 22"), output

    # `up` from there starts no second sandbox: it names the running one.
    code, output = await asterisk_command("up", cwd=elsewhere, env=env)
    assert code == 0, output
    assert f"already running (pid {asterisk.info.pid}) from {state}" in output, output
    assert not (elsewhere / "var").exists()
    assert asterisk.sandbox.running_pid() == asterisk.info.pid


async def test_no_sandbox_running_says_where_it_looked(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = command_env(tmp_path / "cache", GRAAM_DATA_DIR=str(data))
    for args in (("status",), ("cli", "core show version")):
        code, output = await asterisk_command(*args, cwd=tmp_path, env=env)
        assert code == 3, output
        assert output.strip() == (
            f"[asterisk]  error: the sandbox is not running (looked in {data / 'asterisk'}): "
            "run `graam-pbx asterisk up`, or set GRAAM_DATA_DIR to the data directory of the "
            "one you mean"
        ), output
    code, output = await asterisk_command("down", cwd=tmp_path, env=env)
    assert code == 0, output
    assert f"was not running (looked in {data / 'asterisk'})" in output, output


def test_the_configured_directory_comes_first_then_the_recorded_ones(tmp_path: Path) -> None:
    registry = tmp_path / "sandboxes.json"
    older, newer = tmp_path / "older", tmp_path / "newer"
    for directory in (older, newer):
        directory.mkdir()
        instances.record(directory, registry)
    instances.record(older, registry)  # started again: first now
    configured = Settings().sandbox_dir.resolve()
    found = instances.candidates(Settings(), registry)
    assert found[:3] == [configured, older, newer]
    assert instances.candidates(Settings(data_dir=tmp_path / "x"), registry) == [
        tmp_path / "x" / "asterisk"
    ]


def test_only_sandboxes_of_the_default_data_directory_are_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    explicit = Settings(data_dir=tmp_path / "explicit")
    instances.record_started(explicit, explicit.sandbox_dir)
    assert instances.recorded() == []
    default = Settings()
    instances.record_started(default, tmp_path)
    assert instances.recorded() == [tmp_path]
