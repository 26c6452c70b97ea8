"""New devices are introduced to PJSIP's qualify once each, in order, beside the passes: an
introduction that takes Asterisk long (every endpoint read) never holds a pass."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy.ext.asyncio import create_async_engine

from graam_pbx.asterisk.applier import ConfigApplier


class SlowAmi:
    """Answers ``pjsip reload qualify aor`` only when released, as a busy PJSIP would."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.release = asyncio.Event()

    async def command(self, command: str, timeout: float) -> str:
        self.commands.append(command)
        await self.release.wait()
        return f"Synchronizing AOR '{command.rsplit(' ', 1)[-1]}'\n"


def snapshot(devices: dict[int, list[str]]) -> SimpleNamespace:
    return SimpleNamespace(
        tenants=[
            SimpleNamespace(id=tenant, devices=[SimpleNamespace(sip_username=n) for n in names])
            for tenant, names in devices.items()
        ]
    )


def applier(tmp_path: Path, ami: SlowAmi) -> ConfigApplier:
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1/none")
    return ConfigApplier(engine, tmp_path, ami=ami)  # type: ignore[arg-type]


async def test_new_devices_are_introduced_once_without_holding_the_pass(tmp_path: Path) -> None:
    ami = SlowAmi()
    config = applier(tmp_path, ami)
    await config._introduce_devices(snapshot({1: ["t1-a"], 2: ["t2-a"]}), None)  # type: ignore[arg-type]
    assert ami.commands == []  # a full pass: PJSIP synchronizes every AOR itself

    # The pass returns while Asterisk has not answered yet.
    await config._introduce_devices(snapshot({1: ["t1-a", "t1-c", "t1-b"]}), {1})  # type: ignore[arg-type]
    await config._introduce_devices(snapshot({2: ["t2-a", "t2-b"]}), {2})  # type: ignore[arg-type]
    settled = asyncio.create_task(config.settled())
    await asyncio.sleep(0)
    assert not settled.done()  # settled() includes the introductions
    ami.release.set()
    async with asyncio.timeout(5):
        await settled
    assert ami.commands == [
        "pjsip reload qualify aor t1-b",
        "pjsip reload qualify aor t1-c",
        "pjsip reload qualify aor t2-b",
    ]

    # Known devices are not introduced again.
    await config._introduce_devices(snapshot({1: ["t1-a", "t1-b", "t1-c"]}), {1})  # type: ignore[arg-type]
    await config.settled()
    assert len(ami.commands) == 3
    await config.stop()


async def test_stop_cancels_an_introduction_asterisk_has_not_answered(tmp_path: Path) -> None:
    ami = SlowAmi()
    config = applier(tmp_path, ami)
    await config._introduce_devices(snapshot({1: []}), None)  # type: ignore[arg-type]
    await config._introduce_devices(snapshot({1: ["t1-a", "t1-b"]}), {1})  # type: ignore[arg-type]
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await config.stop()
    assert ami.commands == ["pjsip reload qualify aor t1-a"]
