"""`graam-pbx run` (what `make run` calls) as a user runs it: up, ready, Ctrl-C, all gone."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from graam_pbx.sandbox.ports import free_port
from graam_pbx.settings import Settings
from tests.e2e.console import Console, finished_output, start_command


async def wait_gone(pid: int) -> None:
    """Wait until ``pid`` has exited (a zombie waiting for its reaper counts as exited)."""
    async with asyncio.timeout(15):
        while True:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                return
            if stat.rsplit(")", 1)[-1].split()[0] == "Z":
                return
            await asyncio.sleep(0.05)


@pytest.fixture
def run_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAAM_")}
    env.update(
        GRAAM_DATA_DIR=str(tmp_path / "var"),
        GRAAM_API_PORT=str(free_port()),
        GRAAM_AMI_PORT=str(free_port()),
        GRAAM_EMBEDDED_POSTGRES_PORT=str(free_port()),
        GRAAM_SIP_PORT=str(free_port()),
        GRAAM_ASTERISK_ROOTFS=str(Settings().asterisk_rootfs),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
async def console(run_env: dict[str, str]) -> AsyncIterator[Console]:
    running = Console(await start_command("run", env=run_env))
    yield running
    await running.terminate()


async def test_run_serves_ready_api_and_ctrl_c_stops_everything(
    console: Console, run_env: dict[str, str]
) -> None:
    await console.wait_for_line("[postgres]", timeout=60)
    await console.wait_for_line("[asterisk]", timeout=180)
    await console.wait_for_line("[schema]", timeout=60)
    await console.wait_for_line("[api]", timeout=60)
    first_run = [line for line in console.lines if line.startswith("[first run]")]
    assert any("operator@graam.example" in line for line in first_run), console.text()
    assert any("SIP user demo-ana-phone" in line for line in first_run), console.text()
    assert any("10 demo numbers for sale" in line for line in first_run), console.text()
    assert any("+33199001001" in line for line in first_run), console.text()
    base = f"http://127.0.0.1:{run_env['GRAAM_API_PORT']}"
    async with httpx.AsyncClient(base_url=base) as client:
        async with asyncio.timeout(30):
            while (response := await client.get("/readyz")).status_code != 200:
                await asyncio.sleep(0.1)
        assert response.json()["checks"]["ami"]["ok"] is True
        assert (await client.get("/docs")).status_code == 200

    data_dir = Path(run_env["GRAAM_DATA_DIR"])
    asterisk_pid = int((data_dir / "asterisk/asterisk.pid").read_text())
    postgres_pid = int((data_dir / "postgres/postmaster.pid").read_text().split()[0])
    assert Path(f"/proc/{asterisk_pid}").exists()
    assert Path(f"/proc/{postgres_pid}").exists()

    console.process.send_signal(signal.SIGINT)
    async with asyncio.timeout(60):
        code = await console.process.wait()
    assert code == 0, console.text()
    assert "Traceback" not in console.text()
    await wait_gone(asterisk_pid)
    await wait_gone(postgres_pid)


async def test_missing_ami_secret_is_one_clear_line(run_env: dict[str, str]) -> None:
    env = {**run_env, "GRAAM_AMI_HOST": "127.0.0.1"}
    process = await start_command("run", env=env)
    text = await finished_output(process)
    assert process.returncode == 1
    assert "Traceback" not in text
    assert text.strip() == "[asterisk]  error: GRAAM_AMI_HOST is set but GRAAM_AMI_SECRET is not"


async def test_busy_api_port_is_one_clear_line(run_env: dict[str, str]) -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    try:
        process = await start_command("run", env={**run_env, "GRAAM_API_PORT": str(port)})
        text = await finished_output(process)
    finally:
        blocker.close()
        await blocker.wait_closed()
    assert process.returncode == 1
    assert "Traceback" not in text
    assert f"error: 127.0.0.1:{port} is not free" in text
    assert text.strip().startswith("[api]")


async def test_operator_create_prints_a_password_once(run_env: dict[str, str]) -> None:
    process = await start_command("operator", "create", "--email", "Boss@Example.com", env=run_env)
    text = await finished_output(process)
    assert process.returncode == 0, text
    assert "created boss@example.com; password (shown once): " in text
    again = await start_command("operator", "create", "--email", "boss@example.com", env=run_env)
    text = await finished_output(again)
    assert again.returncode == 1
    assert "[operator]  error: email 'boss@example.com' is already taken" in text
    assert "Traceback" not in text
